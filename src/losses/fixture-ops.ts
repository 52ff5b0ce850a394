// How the ops of the reference fixtures (losses.json, the fixtures' README, section 4) map
// onto the registry, for the conformance runner and the tests: which loss,
// which input is the prediction and which the target. Some ops are checked
// through two losses (the same information as class ids and as one-hot rows).

import type { LossName } from './index.js';

export interface FixtureLossBinding {
  readonly loss: LossName;
  /** Name of the prediction input (also the key of grads / grads_sum). */
  readonly pred: string;
  /** Name of the target input. */
  readonly target: string;
}

export const FIXTURE_LOSS_OPS: Readonly<Record<string, readonly FixtureLossBinding[]>> = {
  softmax_cross_entropy_logits: [
    { loss: 'softmax_cross_entropy', pred: 'logits', target: 'labels' },
    { loss: 'softmax_cross_entropy_probs_target', pred: 'logits', target: 'targets_onehot' },
  ],
  categorical_cross_entropy_probs: [{ loss: 'categorical_cross_entropy_probs', pred: 'probs', target: 'labels' }],
  categorical_cross_entropy_probs_keras: [{ loss: 'categorical_cross_entropy_probs_keras', pred: 'probs', target: 'labels' }],
  binary_cross_entropy_logits: [{ loss: 'binary_cross_entropy_logits', pred: 'logits', target: 'targets' }],
  mse: [{ loss: 'mse', pred: 'pred', target: 'target' }],
  mae: [{ loss: 'mae', pred: 'pred', target: 'target' }],
  hinge: [{ loss: 'hinge', pred: 'pred', target: 'labels_pm1' }],
  categorical_hinge_keras: [{ loss: 'categorical_hinge_keras', pred: 'pred', target: 'labels' }],
  multiclass_hinge_crammer_singer: [{ loss: 'multiclass_hinge', pred: 'pred', target: 'labels' }],
  multi_margin_pytorch: [{ loss: 'multi_margin_pytorch', pred: 'pred', target: 'labels' }],
};
