// What the exports carry besides the weights, for each kind of output.
import { describe, expect, test } from 'vitest';
import { exportMetadata, outputsSentence, SCALING_FORMULA } from '../../src/model/export-info.js';

describe('exportMetadata', () => {
  test('a model without inference info or loss: only the outputs sentence', () => {
    expect(exportMetadata({ inference: null }, 3)).toEqual({ outputs: 'unknown: the model file does not name its loss' });
  });

  test('MNIST: the grey-level scaling, the digits, logits', () => {
    const digits = Array.from({ length: 10 }, (_, d) => String(d));
    expect(exportMetadata({ inference: { scaling: { mean: [0], scale: [255] }, classNames: digits }, loss: 'softmax_cross_entropy' }, 10)).toEqual({
      loss: 'softmax_cross_entropy',
      outputs: 'logits: the class is the argmax, the probabilities softmax(outputs); the class id i is classNames[i]',
      scaling: { mean: [0], scale: [255] },
      scalingFormula: SCALING_FORMULA,
      classNames: digits,
    });
  });

  test('what the outputs mean follows the loss', () => {
    expect(outputsSentence('categorical_cross_entropy_probs', 4)).toMatch(/^probabilities/);
    expect(outputsSentence('multiclass_hinge', 4)).toMatch(/^scores/);
    expect(outputsSentence('binary_cross_entropy_logits', 1)).toMatch(/^one logit z: class 1 when sigmoid\(z\) > 0.5/);
    expect(outputsSentence('binary_cross_entropy_logits', 3)).toMatch(/sigmoid\(output\)/);
    expect(outputsSentence('mse', 2)).toBe('values: the outputs are the predictions');
    expect(outputsSentence('no_such_loss', 2)).toMatch(/^unknown/);
  });
});
