// Mean absolute error, elementwise on (n, D):
//   loss_n = mean over the D elements of |pred - target|
//   dloss_n/dpred = sign(pred - target) / D,  with sign(0) = 0
//
// NOTE: the subgradient at the kink pred == target is 0 (PyTorch's l1_loss;
// the fixtures' edge case has exact equalities).

import { elementwiseLoss } from './elementwise.js';

export const mae = elementwiseLoss({
  name: 'mae',
  target: 'real',
  validTarget: Number.isFinite,
  rule: 'targets must be finite numbers',
  value: (p, t) => Math.abs(p - t),
  derivative: (p, t) => (p > t ? 1 : p < t ? -1 : 0),
});
