// The vector kernels (src/tensor/vector.ts): the tree's adds, the division
// by the batch size and the SGD update, WebAssembly against the TypeScript
// reference BIT FOR BIT, on awkward lengths (vector tails, 1, odd sizes), on
// operands inside and outside the wasm memory, with every SGD variant
// (momentum, Nesterov, weight decay on and off, float64 factors that are
// not float32 values).
import { beforeAll, describe, expect, it } from 'vitest';
import { tsVector } from '../../src/tensor/vector.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { expectBits, fill, newKernels } from './wasm-helpers.js';

let wk: WasmKernels;
beforeAll(() => {
  wk = newKernels();
});

const LENGTHS = [1, 2, 3, 4, 5, 7, 15, 16, 17, 31, 33, 64, 67, 1001];

function pair(n: number, seed: number, inside: boolean): [Float32Array, Float32Array] {
  const ref = fill(new Float32Array(n), seed);
  const w = inside ? wk.alloc(n) : new Float32Array(n);
  w.set(ref);
  return [ref, w];
}

describe('wasm vector kernels = TypeScript reference, bit for bit', () => {
  for (const inside of [true, false]) {
    const where = inside ? 'in wasm memory' : 'on the heap (copied per call)';
    it(`addInto, ${where}`, () => {
      for (const n of LENGTHS) {
        const [outRef, out] = pair(n + 3, n, inside);
        const [b] = pair(n + 3, n + 1000, inside);
        tsVector.addInto(outRef, b, n);
        wk.addInto(out, b, n);
        expectBits(out, outRef, `addInto n=${n}`);
      }
    });

    it(`scale by a float64 factor, ${where}`, () => {
      for (const n of LENGTHS) {
        for (const s of [1 / 3, 1 / 256, 0.1, 1e-30, 7]) {
          const [xRef, x] = pair(n + 2, n + 7, inside);
          tsVector.scale(xRef, n, s);
          wk.scale(x, n, s);
          expectBits(x, xRef, `scale n=${n} s=${s}`);
        }
      }
    });

    it(`sgdRange in every variant, ${where}`, () => {
      const variants = [
        { mu: 0, wd: 0, nesterov: false, decay: false },
        { mu: 0, wd: 1e-3, nesterov: false, decay: true },
        { mu: 0.9, wd: 0, nesterov: false, decay: false },
        { mu: 0.9, wd: 5e-4, nesterov: false, decay: true },
        { mu: 0.95, wd: 5e-4, nesterov: true, decay: true },
        { mu: 0.9, wd: 5e-4, nesterov: true, decay: false },
      ];
      for (const n of LENGTHS) {
        for (const [vi, v] of variants.entries()) {
          const from = n > 4 ? 2 : 0, to = n;
          const [pRef, p] = pair(n, 11 + vi, inside);
          const [g] = pair(n, 12 + vi, inside);
          const [velRef, vel] = pair(n, 13 + vi, inside);
          const lr = 0.1 * (1 + Math.cos(n)) / 3; // a float64 that is not a float32
          for (let step = 0; step < 3; step++) {
            tsVector.sgdRange(pRef, g, velRef, from, to, lr, v.mu, v.wd, v.nesterov, v.decay);
            wk.sgdRange(p, g, vel, from, to, lr, v.mu, v.wd, v.nesterov, v.decay);
          }
          expectBits(p, pRef, `sgd params n=${n} ${JSON.stringify(v)}`);
          expectBits(vel, velRef, `sgd velocity n=${n} ${JSON.stringify(v)}`);
        }
      }
    });
  }

  it('reluForward and reluBackward: NaN, -0, infinities and every length', () => {
    const special = [NaN, -0, 0, -Infinity, Infinity, -1e-45, 1e-45, 3.5, -2];
    for (const n of [0, 1, 3, 4, 7, 9, 33]) {
      const x = fill(new Float32Array(n), 40 + n);
      for (let i = 0; i < Math.min(n, special.length); i++) x[i] = special[i];
      const dy = fill(new Float32Array(n), 50 + n);
      const y = new Float32Array(n), yRef = new Float32Array(n), dx = new Float32Array(n), dxRef = new Float32Array(n);
      tsVector.reluForward(yRef, x, n);
      wk.reluForward(y, x, n);
      expectBits(y, yRef, `reluForward n=${n}`);
      tsVector.reluBackward(dxRef, dy, yRef, n);
      wk.reluBackward(dx, dy, yRef, n);
      expectBits(dx, dxRef, `reluBackward n=${n}`);
    }
  });

  it('refuses operands that are too short, naming them', () => {
    expect(() => wk.addInto(new Float32Array(3), new Float32Array(2), 3)).toThrow(/addInto: b has 2 floats, needs 3/);
    expect(() => wk.sgdRange(new Float32Array(4), new Float32Array(4), null, 0, 4, 0.1, 0.9, 0, false, false)).toThrow(/velocity/);
  });
});
