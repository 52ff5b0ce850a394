// Mean squared error, elementwise on (n, D):
//   loss_n = mean over the D elements of (pred - target)^2
//   dloss_n/dpred = 2 (pred - target) / D

import { checkCall, checkTarget, type Loss } from './loss.js';

export const mse: Loss = {
  name: 'mse',
  target: 'real',
  shardLevel: false,
  targetSize: (D) => D,
  forwardBackward(pred, target, n, D, dpred, scale, perSample) {
    checkCall(mse, pred, target, n, D, dpred, perSample);
    const k = (2 * scale) / D;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const row = i * D;
      let sum = 0;
      for (let j = 0; j < D; j++) {
        const t = target[row + j];
        checkTarget(Number.isFinite(t), 'mse', target, row + j, D, 'targets must be finite numbers');
        const d = pred[row + j] - t;
        sum += d * d;
        dpred[row + j] = k * d;
      }
      const loss = sum / D;
      if (perSample) perSample[i] = loss;
      total += loss;
    }
    return total;
  },
};
