// The loss registry: the names a config's `loss` field accepts.
//
//   name                                  target (per sample)       loss of one sample
//   softmax_cross_entropy                 class id (1)              -log softmax(z)_y
//   softmax_cross_entropy_probs_target    probability row (D)       -sum_c t_c log softmax(z)_c
//   categorical_cross_entropy_probs       class id (1)              -log p_y (p: probabilities)
//   categorical_cross_entropy_probs_keras class id (1)              Keras: renormalize, clip 1e-7
//   binary_cross_entropy_logits           D values in [0, 1]        mean_d BCE(sigmoid(z_d), t_d)
//   mse                                   D reals                   mean_d (f_d - t_d)^2
//   mae                                   D reals                   mean_d |f_d - t_d|
//   hinge                                 D labels in {-1, +1}      mean_d max(0, 1 - y_d f_d)
//   categorical_hinge_keras               class id (1)              Keras categorical_hinge
//   multiclass_hinge                      class id (1)              Crammer-Singer
//   multi_margin_pytorch                  class id (1)              PyTorch MultiMarginLoss
//   soft_f1                               class id (1)              1 - macro soft-F1 of the micro-shard
//                                                                    (see soft-f1.ts: not per sample)

import { dptError } from '../errors.js';
import { binaryCrossEntropyLogits } from './binary-cross-entropy.js';
import { categoricalCrossEntropyProbs, categoricalCrossEntropyProbsKeras } from './categorical-cross-entropy.js';
import { hinge } from './hinge.js';
import type { Loss } from './loss.js';
import { mae } from './mae.js';
import { mse } from './mse.js';
import { categoricalHingeKeras, multiclassHinge, multiMarginPytorch } from './multiclass-hinge.js';
import { softF1 } from './soft-f1.js';
import { softmaxCrossEntropy, softmaxCrossEntropyProbsTarget } from './softmax-cross-entropy.js';

export type { Loss, TargetKind } from './loss.js';
export { binaryCrossEntropyLogits } from './binary-cross-entropy.js';
export { categoricalCrossEntropyProbs, categoricalCrossEntropyProbsKeras, KERAS_EPSILON } from './categorical-cross-entropy.js';
export { hinge } from './hinge.js';
export { mae } from './mae.js';
export { mse } from './mse.js';
export { categoricalHingeKeras, multiclassHinge, multiMarginPytorch } from './multiclass-hinge.js';
export { softF1, softF1Loss, SOFT_F1_EPS, type SoftF1Options } from './soft-f1.js';
export { softmaxCrossEntropy, softmaxCrossEntropyProbsTarget } from './softmax-cross-entropy.js';

/** Every registered loss name, in a fixed order (usable as z.enum(LOSS_NAMES)). */
export const LOSS_NAMES = [
  'softmax_cross_entropy',
  'softmax_cross_entropy_probs_target',
  'categorical_cross_entropy_probs',
  'categorical_cross_entropy_probs_keras',
  'binary_cross_entropy_logits',
  'mse',
  'mae',
  'hinge',
  'categorical_hinge_keras',
  'multiclass_hinge',
  'multi_margin_pytorch',
  'soft_f1',
] as const;

export type LossName = (typeof LOSS_NAMES)[number];

export const LOSSES: Readonly<Record<LossName, Loss>> = {
  softmax_cross_entropy: softmaxCrossEntropy,
  softmax_cross_entropy_probs_target: softmaxCrossEntropyProbsTarget,
  categorical_cross_entropy_probs: categoricalCrossEntropyProbs,
  categorical_cross_entropy_probs_keras: categoricalCrossEntropyProbsKeras,
  binary_cross_entropy_logits: binaryCrossEntropyLogits,
  mse,
  mae,
  hinge,
  categorical_hinge_keras: categoricalHingeKeras,
  multiclass_hinge: multiclassHinge,
  multi_margin_pytorch: multiMarginPytorch,
  soft_f1: softF1,
};

export function isLossName(name: string): name is LossName {
  return (LOSS_NAMES as readonly string[]).includes(name);
}

/** The loss registered under `name`; DPT_ERR_CONFIG naming the choices otherwise. */
export function getLoss(name: string): Loss {
  if (!isLossName(name)) {
    throw dptError('DPT_ERR_CONFIG', `loss: unknown loss '${name}'; choose one of ${LOSS_NAMES.join(', ')}`);
  }
  return LOSSES[name];
}
