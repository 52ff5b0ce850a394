import { describe, expect, it } from 'vitest';
import { SgdConfig, createSgdState, sgdStep } from '../../src/optim/sgd.js';
import { ScheduleConfig, learningRate } from '../../src/optim/schedule.js';

describe('SGD', () => {
  it('plain: w -= lr * g', () => {
    const cfg = SgdConfig.parse({ lr: 0.5 });
    const w = Float32Array.from([1, -2, 3]);
    sgdStep(cfg, createSgdState(cfg, 3), 0.5, w, Float32Array.from([0.5, 1, -2]), 3);
    expect([...w]).toEqual([0.75, -2.5, 4]);
  });

  it('momentum follows PyTorch: v = mu v + g, w -= lr v (first step equals plain SGD)', () => {
    const cfg = SgdConfig.parse({ lr: 0.1, momentum: 0.9 });
    const state = createSgdState(cfg, 1);
    const w = Float32Array.from([1]);
    sgdStep(cfg, state, 0.1, w, Float32Array.from([1]), 1);
    expect(w[0]).toBeCloseTo(0.9, 6);
    sgdStep(cfg, state, 0.1, w, Float32Array.from([1]), 1);
    // v = 0.9 * 1 + 1 = 1.9
    expect(state.velocity[0]).toBeCloseTo(1.9, 6);
    expect(w[0]).toBeCloseTo(0.9 - 0.19, 6);
  });

  it('nesterov uses g + mu * v', () => {
    const cfg = SgdConfig.parse({ lr: 0.1, momentum: 0.5, nesterov: true });
    const state = createSgdState(cfg, 1);
    const w = Float32Array.from([0]);
    sgdStep(cfg, state, 0.1, w, Float32Array.from([2]), 1);
    // v = 2, step = 2 + 0.5 * 2 = 3
    expect(w[0]).toBeCloseTo(-0.3, 6);
  });

  it('weight decay applies only where the mask says so', () => {
    const cfg = SgdConfig.parse({ lr: 1, weightDecay: 0.1 });
    const w = Float32Array.from([1, 1]);
    sgdStep(cfg, createSgdState(cfg, 2), 1, w, new Float32Array(2), 2, Uint8Array.from([1, 0]));
    expect(w[0]).toBeCloseTo(0.9, 6);
    expect(w[1]).toBe(1);
  });
});

describe('learning-rate schedules', () => {
  const total = 100;
  it('constant, with linear warm-up', () => {
    const s = ScheduleConfig.parse({ type: 'constant' });
    expect(learningRate(1, s, 4, 0, total)).toBe(0.25);
    expect(learningRate(1, s, 4, 3, total)).toBe(1);
    expect(learningRate(1, s, 4, 50, total)).toBe(1);
  });
  it('step decay', () => {
    const s = ScheduleConfig.parse({ type: 'step', stepSize: 10, gamma: 0.5 });
    expect(learningRate(1, s, 0, 9, total)).toBe(1);
    expect(learningRate(1, s, 0, 10, total)).toBe(0.5);
    expect(learningRate(1, s, 0, 25, total)).toBe(0.25);
  });
  it('cosine from lr to minLr', () => {
    const s = ScheduleConfig.parse({ type: 'cosine', minLr: 0.1 });
    expect(learningRate(1, s, 0, 0, total)).toBeCloseTo(1, 12);
    expect(learningRate(1, s, 0, 50, total)).toBeCloseTo(0.55, 12);
    expect(learningRate(1, s, 0, 100, total)).toBeCloseTo(0.1, 12);
  });
});
