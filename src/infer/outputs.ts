// What a model's outputs mean, from the loss it was trained with: the loss
// says whether the last layer emits logits, probabilities, margin scores or
// values, hence how prediction turns them into class probabilities and
// classes.
//
//   loss                                          task            probabilities
//   softmax_cross_entropy, ..._probs_target,
//     soft_f1                                     classes (D)     softmax of the outputs (logits)
//   categorical_cross_entropy_probs(_keras)       classes (D)     the outputs (the model ends in softmax)
//   multiclass_hinge, multi_margin_pytorch,
//     categorical_hinge_keras                     classes (D)     none: the outputs are scores
//   binary_cross_entropy_logits, D = 1            classes (2)     [1 - sigmoid(z), sigmoid(z)]
//   binary_cross_entropy_logits, D > 1            values          sigmoid per output (independent labels)
//   mse, mae, hinge                               values          none
//
// Classes are the argmax of the outputs (first maximum on ties), which is
// also the argmax of the probabilities; for the binary case, sigmoid(z) > 0.5.
import type { LossName } from '../losses/index.js';

export type OutputKind =
  | { readonly task: 'classification'; readonly numClasses: number; readonly probabilities: 'softmax' | 'outputs' | 'none' | 'sigmoid-binary' }
  | { readonly task: 'regression'; readonly values: 'outputs' | 'sigmoid' };

export function outputKindOf(loss: LossName, outputSize: number): OutputKind {
  switch (loss) {
    case 'softmax_cross_entropy':
    case 'softmax_cross_entropy_probs_target':
    case 'soft_f1':
      return { task: 'classification', numClasses: outputSize, probabilities: 'softmax' };
    case 'categorical_cross_entropy_probs':
    case 'categorical_cross_entropy_probs_keras':
      return { task: 'classification', numClasses: outputSize, probabilities: 'outputs' };
    case 'multiclass_hinge':
    case 'multi_margin_pytorch':
    case 'categorical_hinge_keras':
      return { task: 'classification', numClasses: outputSize, probabilities: 'none' };
    case 'binary_cross_entropy_logits':
      return outputSize === 1
        ? { task: 'classification', numClasses: 2, probabilities: 'sigmoid-binary' }
        : { task: 'regression', values: 'sigmoid' };
    case 'mse':
    case 'mae':
    case 'hinge':
      return { task: 'regression', values: 'outputs' };
  }
}

function sigmoid(z: number): number {
  // NOTE: two forms so that exp never overflows.
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * probs (n, C) from outputs (n, D) for a classification kind with
 * probabilities; softmax in float64 with the row maximum subtracted.
 */
export function probabilitiesOf(kind: 'softmax' | 'outputs' | 'sigmoid-binary', outputs: Float32Array, n: number, D: number, probs: Float32Array): void {
  for (let i = 0; i < n; i++) {
    const row = i * D;
    if (kind === 'sigmoid-binary') {
      const p = sigmoid(outputs[i]);
      probs[2 * i] = 1 - p;
      probs[2 * i + 1] = p;
    } else if (kind === 'outputs') {
      probs.set(outputs.subarray(row, row + D), row);
    } else {
      let max = -Infinity;
      for (let j = 0; j < D; j++) max = Math.max(max, outputs[row + j]);
      let sum = 0;
      for (let j = 0; j < D; j++) sum += Math.exp(outputs[row + j] - max);
      for (let j = 0; j < D; j++) probs[row + j] = Math.exp(outputs[row + j] - max) / sum;
    }
  }
}

/** values (n, D): the outputs in the targets' units (sigmoid for independent binary labels). */
export function valuesOf(kind: 'outputs' | 'sigmoid', outputs: Float32Array): Float32Array {
  if (kind === 'outputs') return outputs.slice();
  return outputs.map(sigmoid);
}
