// Mean squared error, elementwise on (n, D):
//   loss_n = mean over the D elements of (pred - target)^2
//   dloss_n/dpred = 2 (pred - target) / D

import { elementwiseLoss } from './elementwise.js';

export const mse = elementwiseLoss({
  name: 'mse',
  target: 'real',
  validTarget: Number.isFinite,
  rule: 'targets must be finite numbers',
  value: (p, t) => (p - t) * (p - t),
  derivative: (p, t) => 2 * (p - t),
});
