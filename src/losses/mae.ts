// Mean absolute error, elementwise on (n, D):
//   loss_n = mean over the D elements of |pred - target|
//   dloss_n/dpred = sign(pred - target) / D,  with sign(0) = 0
//
// NOTE: the subgradient at the kink pred == target is 0 (PyTorch's l1_loss;
// the fixtures' edge case has exact equalities).

import { checkCall, checkTarget, type Loss } from './loss.js';

export const mae: Loss = {
  name: 'mae',
  target: 'real',
  shardLevel: false,
  targetSize: (D) => D,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(mae, pred, target, n, D, dpred, perSample);
    const k = scale / D;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * D;
      let sum = 0;
      for (let j = 0; j < D; j++) {
        const t = target[row + j];
        checkTarget(Number.isFinite(t), 'mae', target, row + j, D, 'targets must be finite numbers');
        const d = pred[row + j] - t;
        sum += Math.abs(d);
        dpred[row + j] = d > 0 ? k : d < 0 ? -k : 0;
      }
      const loss = sum / D;
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
