import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdamConfig, AdamWConfig, adamSlice, createAdamState, powInt } from '../../src/optim/adam.js';
import { OptimizerConfig, createOptimizerState, optimizerSlice, stateArrays } from '../../src/optim/optimizer.js';
import { tsVector } from '../../src/tensor/vector.js';
import { useKernels } from '../../src/tensor/setup.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { expectBits, fill, newKernels } from '../tensor/wasm-helpers.js';

/** PyTorch 1.13's Adam / AdamW on one parameter, in float64, for t = 1..steps. */
function reference(type: 'adam' | 'adamw', w0: number, grads: number[], lr: number, b1: number, b2: number, eps: number, wd: number): number[] {
  let w = w0, m = 0, v = 0;
  const out: number[] = [];
  grads.forEach((g0, i) => {
    const t = i + 1;
    let g = g0;
    if (type === 'adamw') w *= 1 - lr * wd;
    else g += wd * w;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    w -= (lr / (1 - b1 ** t)) * m / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
    out.push(w);
  });
  return out;
}

describe('Adam and AdamW', () => {
  for (const type of ['adam', 'adamw'] as const) {
    it(`${type}: PyTorch's formulas, bias correction, eps outside the square root`, () => {
      const cfg = (type === 'adam' ? AdamConfig : AdamWConfig).parse({ type, lr: 0.1, betas: [0.8, 0.99], eps: 1e-3, weightDecay: 0.05 });
      const grads = [0.5, -1.25, 0.125, 2, -0.75];
      const expected = reference(type, 1.5, grads, 0.1, 0.8, 0.99, 1e-3, 0.05);
      const state = createAdamState(1);
      const w = Float32Array.from([1.5]);
      grads.forEach((g, i) => {
        adamSlice(cfg, state, 0.1, i + 1, w, Float32Array.from([g]), 0, 1);
        expect(w[0]).toBeCloseTo(expected[i], 6);
      });
    });
  }

  it('the first step moves every weight by about lr (the sign of its gradient), whatever its size', () => {
    const cfg = AdamConfig.parse({ type: 'adam', lr: 0.01 });
    const w = new Float32Array(3);
    adamSlice(cfg, createAdamState(3), 0.01, 1, w, Float32Array.from([1e-3, -50, 2]), 0, 3);
    expect([...w].map((x) => Math.round(x * 1e6) / 1e6)).toEqual([-0.01, 0.01, -0.01]);
  });

  it('weight decay applies where the mask says so: L2 in the gradient (adam), decoupled (adamw)', () => {
    for (const type of ['adam', 'adamw'] as const) {
      const cfg = OptimizerConfig.parse({ type, lr: 0.1, weightDecay: 0.5 });
      const state = createOptimizerState(cfg, 2);
      const w = Float32Array.from([1, 1]);
      optimizerSlice(cfg, state, 0.1, w, new Float32Array(2), 0, 2, Uint8Array.from([1, 0]));
      expect(w[1]).toBe(1); // no gradient, no decay: unchanged
      if (type === 'adamw') expect(w[0]).toBeCloseTo(0.95, 6); // shrunk; m = 0 adds nothing
      else expect(w[0]).toBeCloseTo(0.9, 5); // g = 0.5: a first step of lr
    }
  });

  it('defaults: betas (0.9, 0.999), eps 1e-8; weight decay 0 for adam and 0.01 for adamw (PyTorch)', () => {
    expect(OptimizerConfig.parse({ type: 'adam', lr: 1e-3 })).toEqual({ type: 'adam', lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    expect(OptimizerConfig.parse({ type: 'adamw', lr: 1e-3 })).toMatchObject({ weightDecay: 0.01 });
    expect(OptimizerConfig.parse({ lr: 0.1 })).toEqual({ lr: 0.1, momentum: 0, nesterov: false, weightDecay: 0 });
    expect(OptimizerConfig.parse({ type: 'sgd', lr: 0.1, momentum: 0.9 })).toEqual({ lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0 });
    expect(OptimizerConfig.safeParse({ type: 'adam', lr: 0.1, momentum: 0.9 }).success).toBe(false);
    expect(OptimizerConfig.safeParse({ type: 'adam', lr: 0.1, betas: [0.9, 1] }).success).toBe(false);
    expect(OptimizerConfig.safeParse({ type: 'rmsprop', lr: 0.1 }).success).toBe(false);
  });

  it('state: m and v for Adam, the velocity for SGD with momentum; the step count starts at 0', () => {
    const names = (cfg: OptimizerConfig) => stateArrays(cfg, createOptimizerState(cfg, 5)).map((s) => [s.name, s.array.length]);
    expect(names(OptimizerConfig.parse({ type: 'adam', lr: 1 }))).toEqual([['m', 5], ['v', 5]]);
    expect(names(OptimizerConfig.parse({ lr: 1, momentum: 0.9 }))).toEqual([['velocity', 5]]);
    expect(names(OptimizerConfig.parse({ lr: 1 }))).toEqual([]);
    expect(createOptimizerState(OptimizerConfig.parse({ type: 'adam', lr: 1 }), 5).step).toBe(0);
    expect(() => optimizerSlice(OptimizerConfig.parse({ type: 'adam', lr: 1 }), { velocity: new Float32Array(0) }, 1, new Float32Array(2), new Float32Array(2), 0, 2))
      .toThrow(/adam needs a state with m and v/);
  });

  it('powInt: b^t by float64 multiplications, close to Math.pow', () => {
    for (const t of [0, 1, 2, 3, 10, 1000, 123457]) {
      expect(powInt(0.999, t)).toBeCloseTo(0.999 ** t, 12);
    }
    expect(powInt(0.9, 0)).toBe(1);
  });
});

describe('Adam slices: the same bits whatever the slicing, and in WebAssembly', () => {
  let wk: WasmKernels;
  beforeAll(() => { wk = newKernels(16 * 1024 * 1024); });
  afterAll(() => useKernels(null));

  const N = 103;
  const mask = Uint8Array.from({ length: N }, (_, i) => (i % 17 < 11 ? 1 : 0));
  /** Three updates of a fresh state, each cut at `cuts`; returns w, m, v. */
  function run(type: 'adam' | 'adamw', cuts: number[], inside: boolean): Float32Array[] {
    const buf = (n: number) => (inside ? wk.alloc(n) : new Float32Array(n));
    const cfg = OptimizerConfig.parse({ type, lr: 0.01, betas: [0.85, 0.995], eps: 1e-6, weightDecay: 0.1 });
    const state = createOptimizerState(cfg, N, buf);
    const w = fill(buf(N), 1);
    for (let step = 0; step < 3; step++) {
      const g = fill(buf(N), 10 + step);
      for (let j = 0; j + 1 < cuts.length; j++) optimizerSlice(cfg, state, 0.01 * (step + 1), w, g, cuts[j], cuts[j + 1], mask);
      state.step++;
    }
    return [w, state.m, state.v].map((a) => a.slice());
  }

  for (const type of ['adam', 'adamw'] as const) {
    it(`${type}: TypeScript, any slicing, WebAssembly in and out of its memory: identical bits`, () => {
      useKernels(null);
      const whole = run(type, [0, N], false);
      for (const cuts of [[0, 1, 2, 50, N], [0, 33, 34, 35, 36, 99, N], [0, 17, 34, 51, 68, 85, N]]) {
        run(type, cuts, false).forEach((a, i) => expectBits(a, whole[i], `ts ${cuts.join(' ')} [${i}]`));
      }
      useKernels(wk);
      for (const inside of [true, false]) {
        for (const cuts of [[0, N], [0, 5, 6, 7, 61, N]]) {
          run(type, cuts, inside).forEach((a, i) => expectBits(a, whole[i], `wasm ${inside ? 'in' : 'out of'} memory ${cuts.join(' ')} [${i}]`));
        }
      }
      useKernels(null);
    });
  }

  it('tsVector.adamRange and the wasm one agree on awkward values (tiny, huge, zero gradients)', () => {
    const n = 9;
    const mk = () => ({
      w: Float32Array.from([0, -0, 1e-30, 3e30, -2, 0.5, 1, -1, 7]),
      g: Float32Array.from([0, 1e-20, -1e-30, 1e10, 0, -0, 3, 1e-3, -4]),
      m: Float32Array.from([0, 0, 1e-3, -1, 0.5, 0, 2, 0, 1]),
      v: Float32Array.from([0, 1e-30, 1e-3, 1e20, 0.25, 0, 4, 0, 1]),
    });
    const a = mk();
    tsVector.adamRange(a.w, a.g, a.m, a.v, 0, n, 0.9, 0.999, 0.01 / 0.1, Math.sqrt(0.001), 1e-8, 0.01, 0.999, false, true);
    const b = mk();
    wk.adamRange(b.w, b.g, b.m, b.v, 0, n, 0.9, 0.999, 0.01 / 0.1, Math.sqrt(0.001), 1e-8, 0.01, 0.999, false, true);
    expectBits(b.w, a.w, 'w'); expectBits(b.m, a.m, 'm'); expectBits(b.v, a.v, 'v');
  });
});
