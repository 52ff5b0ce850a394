// Refusals: invalid targets (DPT_ERR_DATASET, naming the sample and the
// value), wrong sizes (DPT_ERR_SHAPE), unknown names (DPT_ERR_CONFIG).
import { describe, expect, it } from 'vitest';
import { DptrainError, type ErrorCode } from '../../src/errors.js';
import { getLoss, isLossName, LOSS_NAMES, LOSSES } from '../../src/losses/index.js';

function thrown(fn: () => unknown): DptrainError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DptrainError);
    return e as DptrainError;
  }
  throw new Error('expected a throw');
}

function expectError(fn: () => unknown, code: ErrorCode, ...parts: string[]): void {
  const e = thrown(fn);
  expect(e.code).toBe(code);
  for (const p of parts) expect(e.message).toContain(p);
}

const CLASS_LOSSES = LOSS_NAMES.filter((name) => LOSSES[name].target === 'class');

describe('class labels', () => {
  it.each(CLASS_LOSSES.map((name) => ({ name })))('$name refuses non-integer, negative, too large and NaN labels', ({ name }) => {
    const loss = getLoss(name);
    const n = 3, D = 4;
    const pred = new Float32Array(n * D).fill(0.25);
    const dpred = new Float32Array(n * D);
    for (const bad of [2.5, -1, 4, 1000, NaN]) {
      const target = Float32Array.from([0, bad, 3]);
      expectError(() => loss.forwardBackward(pred, target, n, D, dpred, 1), 'DPT_ERR_DATASET', 'sample 1', `label ${bad}`, '[0, 4)', name);
    }
    // The valid extremes pass.
    expect(Number.isFinite(loss.forwardBackward(pred, Float32Array.from([0, 3, 3]), n, D, dpred, 1))).toBe(true);
  });

  it.each(CLASS_LOSSES.map((name) => ({ name })))('$name needs at least two outputs', ({ name }) => {
    expectError(() => getLoss(name).forwardBackward(new Float32Array(2), new Float32Array(2), 2, 1, new Float32Array(2), 1),
      'DPT_ERR_SHAPE', 'output size', 'binary_cross_entropy_logits');
  });
});

describe('other targets', () => {
  it('hinge refuses labels other than -1 and +1 (0/1 labels included)', () => {
    const pred = new Float32Array(4);
    const dpred = new Float32Array(4);
    expectError(() => getLoss('hinge').forwardBackward(pred, Float32Array.from([1, -1, 0, 1]), 2, 2, dpred, 1),
      'DPT_ERR_DATASET', 'sample 1', 'target 0', 'position 0', '-1 or +1', '2 * label - 1');
    expect(getLoss('hinge').forwardBackward(pred, Float32Array.from([1, -1, -1, 1]), 2, 2, dpred, 1)).toBe(2);
  });

  it('binary_cross_entropy_logits refuses targets outside [0, 1]', () => {
    expectError(() => getLoss('binary_cross_entropy_logits').forwardBackward(new Float32Array(3), Float32Array.from([0, 1, 1.5]), 3, 1, new Float32Array(3), 1),
      'DPT_ERR_DATASET', 'sample 2', 'target 1.5', '[0, 1]');
  });

  it('softmax_cross_entropy_probs_target refuses negative probabilities', () => {
    expectError(() => getLoss('softmax_cross_entropy_probs_target').forwardBackward(new Float32Array(4), Float32Array.from([0.5, 0.5, 1.5, -0.5]), 2, 2, new Float32Array(4), 1),
      'DPT_ERR_DATASET', 'sample 1', 'target 1.5');
  });

  it.each([{ name: 'mse' }, { name: 'mae' }])('$name refuses non-finite targets', ({ name }) => {
    expectError(() => getLoss(name).forwardBackward(new Float32Array(4), Float32Array.from([0, 1, 2, NaN]), 2, 2, new Float32Array(4), 1),
      'DPT_ERR_DATASET', 'sample 1', 'NaN', 'position 1');
  });
});

describe('sizes', () => {
  const loss = getLoss('mse');
  it('refuses short buffers, naming the buffer', () => {
    expectError(() => loss.forwardBackward(new Float32Array(5), new Float32Array(6), 2, 3, new Float32Array(6), 1), 'DPT_ERR_SHAPE', 'pred');
    expectError(() => loss.forwardBackward(new Float32Array(6), new Float32Array(5), 2, 3, new Float32Array(6), 1), 'DPT_ERR_SHAPE', 'target');
    expectError(() => loss.forwardBackward(new Float32Array(6), new Float32Array(6), 2, 3, new Float32Array(5), 1), 'DPT_ERR_SHAPE', 'dpred');
    expectError(() => loss.forwardBackward(new Float32Array(6), new Float32Array(6), 2, 3, new Float32Array(6), 1, new Float64Array(1)), 'DPT_ERR_SHAPE', 'perSample');
    expectError(() => loss.forwardBackward(new Float32Array(6), new Float32Array(6), 1.5, 3, new Float32Array(6), 1), 'DPT_ERR_SHAPE', 'sample count');
  });

  it('targetSize: 1 for class ids, D otherwise', () => {
    for (const name of LOSS_NAMES) expect(LOSSES[name].targetSize(7)).toBe(LOSSES[name].target === 'class' ? 1 : 7);
  });
});

describe('registry', () => {
  it('names every loss by its own name', () => {
    for (const name of LOSS_NAMES) expect(LOSSES[name].name).toBe(name);
    expect(Object.keys(LOSSES).sort()).toEqual([...LOSS_NAMES].sort());
  });

  it('refuses unknown names with the list of choices', () => {
    expectError(() => getLoss('cross_entropy'), 'DPT_ERR_CONFIG', "'cross_entropy'", 'softmax_cross_entropy', 'soft_f1');
    expectError(() => getLoss('toString'), 'DPT_ERR_CONFIG');
    expect(isLossName('mse')).toBe(true);
    expect(isLossName('constructor')).toBe(false);
  });
});
