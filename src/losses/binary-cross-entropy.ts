// Binary cross-entropy from logits, elementwise on (n, D): D independent
// binary outputs per sample, targets t in [0, 1] (0/1 labels or soft targets).
//
//   l(z, t) = -t log sigmoid(z) - (1 - t) log(1 - sigmoid(z))
//           = max(z, 0) - z t + log(1 + exp(-|z|))       (the stable form)
//   loss_n  = mean over the D elements of l
//   dloss_n/dz = (sigmoid(z) - t) / D
//
// NOTE: the naive form overflows or loses everything for logits of +-100;
// the stable form never exponentiates a positive number.

import { elementwiseLoss } from './elementwise.js';

/** sigmoid(z) without overflow for large |z|. */
function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

export const binaryCrossEntropyLogits = elementwiseLoss({
  name: 'binary_cross_entropy_logits',
  target: 'binary',
  validTarget: (t) => t >= 0 && t <= 1,
  rule: 'targets must lie in [0, 1]',
  value: (z, t) => Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z))),
  derivative: (z, t) => sigmoid(z) - t,
});
