// Binary hinge loss, elementwise on (n, D): scores f, labels y in {-1, +1}.
//   loss_n = mean over the D elements of max(0, 1 - y f)
//   dloss_n/df = -y / D where 1 - y f > 0, else 0 (0 at y f == 1 exactly)
//
// Labels must be exactly -1 or +1. A 0/1-labelled dataset is refused
// (DPT_ERR_DATASET), not silently converted: map it with y' = 2y - 1 when
// loading. (Keras' `hinge` converts 0/1 labels when ALL labels of a call are
// 0 or 1; decided per micro-shard, that guess could differ between shards.)

import { checkCall, checkTarget, type Loss } from './loss.js';

export const hinge: Loss = {
  name: 'hinge',
  target: 'pm1',
  shardLevel: false,
  targetSize: (D) => D,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(hinge, pred, target, n, D, dpred, perSample);
    const k = scale / D;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * D;
      let sum = 0;
      for (let j = 0; j < D; j++) {
        const y = target[row + j];
        checkTarget(y === 1 || y === -1, 'hinge', target, row + j, D,
          'hinge labels must be -1 or +1 (map 0/1 labels with y = 2 * label - 1)');
        const m = 1 - y * pred[row + j];
        // NOTE: only m > 0 passes gradient (0 at the kink m == 0).
        if (m > 0) {
          sum += m;
          dpred[row + j] = -y * k;
        } else {
          dpred[row + j] = 0;
        }
      }
      const loss = sum / D;
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
