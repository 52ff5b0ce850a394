// The WebAssembly batch normalization loops against the TypeScript
// reference, BIT FOR BIT (the contract in src/tensor/norm.ts): row lengths
// S that leave every tail (S mod 4 = 0..3), one and many channels, one
// sample, large offsets, operands inside and outside the wasm memory; and
// the layer on both kinds of kernels.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatchNorm } from '../../src/nn/batchnorm.js';
import { tsNorm, type NormKernels } from '../../src/tensor/norm.js';
import { useKernels } from '../../src/tensor/setup.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { bindLayer, trainCtx, EVAL } from '../nn/layer-harness.js';
import { expectBits, fill, newKernels } from './wasm-helpers.js';

let wk: WasmKernels;
beforeAll(() => { wk = newKernels(64 * 1024 * 1024); });
afterAll(() => useKernels(null));

// [N, C, S]: the CNN's (8 samples of 32 channels of 24x24), odd tails, one channel, one sample, S = 1 (the TS path), S < 4.
const SHAPES: [number, number, number][] = [
  [8, 32, 576], [3, 5, 25], [2, 4, 7], [4, 3, 6], [1, 6, 9], [5, 1, 13], [3, 64, 16], [6, 7, 1], [4, 2, 2], [2, 3, 3], [1, 1, 4],
];

function buf(n: number, inside: boolean): Float32Array {
  return inside ? wk.alloc(n) : new Float32Array(n);
}

/** Every output of one forward and backward in both modes, through kernels k. */
function run(k: NormKernels, [N, C, S]: [number, number, number], inside: boolean, seed: number, offset: number) {
  const len = N * C * S;
  const x = fill(buf(len, inside), seed, 6);
  for (let i = 0; i < len; i++) x[i] += offset;
  const dy = fill(buf(len, inside), seed + 1);
  const gamma = fill(buf(C, inside), seed + 2), beta = fill(buf(C, inside), seed + 3);
  const mean = new Float64Array(C), varB = new Float64Array(C), rstd = new Float64Array(C);
  k.moments(mean, varB, x, N, C, S);
  for (let c = 0; c < C; c++) rstd[c] = 1 / Math.sqrt(varB[c] + 1e-5);
  const y = buf(len, inside).fill(NaN), xhat = buf(len, inside).fill(NaN);
  k.normalize(y, xhat, x, mean, rstd, gamma, beta, N, C, S);
  const sumG = new Float64Array(C), sumGx = new Float64Array(C), kc = Float64Array.from(rstd, (r, c) => (gamma[c] * r) / (N * S));
  k.gradSums(sumG, sumGx, dy, xhat, N, C, S);
  const dx = buf(len, inside).fill(NaN), dxEval = buf(len, inside).fill(NaN);
  k.trainInputGrad(dx, dy, xhat, kc, sumG, sumGx, N, C, S);
  k.evalInputGrad(dxEval, dy, kc, N, C, S);
  const f32 = (a: Float64Array) => new Float32Array(new Uint8Array(a.buffer).slice().buffer); // float64 bits as 2 words each
  return { mean: f32(mean), varB: f32(varB), sumG: f32(sumG), sumGx: f32(sumGx), y: y.slice(), xhat: xhat.slice(), dx: dx.slice(), dxEval: dxEval.slice() };
}

describe('wasm batch normalization loops', () => {
  for (const shape of SHAPES) {
    for (const inside of [true, false]) {
      it(`[N, C, S] = [${shape.join(', ')}], ${inside ? 'in' : 'out of'} wasm memory: the reference's bits`, () => {
        for (const offset of [0, 1000]) {
          const ref = run(tsNorm, shape, inside, 7, offset);
          const got = run(wk, shape, inside, 7, offset);
          for (const key of Object.keys(ref) as (keyof typeof ref)[]) expectBits(got[key], ref[key], `${key}, offset ${offset}`);
        }
      });
    }
  }

  it('the lanes: with S = 1 a channel\'s sum is the plain sum in order, with S > 1 eight lanes by position', () => {
    const x = new Float32Array(37);
    for (let i = 0; i < 37; i++) x[i] = 10 ** (((i * 5) % 13) * 2) * (1 + i / 7) * (i % 2 ? 1 : -1); // 1 to 1e24: the order shows in the bits
    const mean = new Float64Array(1), v = new Float64Array(1);
    let plain = 0;
    for (let n = 0; n < 37; n++) plain += x[n];
    tsNorm.moments(mean, v, x, 37, 1, 1);
    expect(mean[0]).toBe(plain / 37);
    const l = [0, 0, 0, 0, 0, 0, 0, 0];
    for (let s = 0; s < 37; s++) l[s % 8] += x[s];
    const laned = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
    expect(laned).not.toBe(plain);
    for (const k of [tsNorm, wk]) {
      k.moments(mean, v, x, 1, 1, 37);
      expect(mean[0]).toBe(laned / 37);
    }
  });

  it('refuses short operands with DPT_ERR_SHAPE, naming them', () => {
    const x = wk.alloc(10), m = new Float64Array(2);
    expect(() => wk.moments(m, m, x, 2, 2, 3)).toThrow(/bnMoments: x has 10 floats, needs 12 for \(N, C, S\) = \(2, 2, 3\)/);
    wk.free(x);
  });
});

describe('the batchnorm layer on both kinds of kernels', () => {
  it('an image, a sequence and flat features: the same bits with the wasm kernels as with the TypeScript ones', () => {
    for (const [inShape, batch] of [[[6, 10, 9], 3], [[4, 5, 5], 1], [[7, 5], 2], [[12], 4]] as [number[], number][]) {
      const outputs: Float32Array[][] = [];
      for (const kind of ['ts', 'wasm'] as const) {
        useKernels(kind === 'wasm' ? wk : null);
        const layer = createBatchNorm(0, inShape, { type: 'batchnorm' });
        const b = bindLayer(layer);
        const n = batch * inShape.reduce((a, d) => a * d, 1);
        const x = fill(new Float32Array(n), 11, 3), G = fill(new Float32Array(n), 12);
        const got: Float32Array[] = [];
        for (const ctx of [trainCtx(), EVAL]) {
          got.push(layer.forward(x, batch, ctx).slice(), layer.backward(G, batch, true)!.slice());
        }
        got.push(b.flatG.slice(), b.flatDs.slice());
        outputs.push(got);
      }
      useKernels(null);
      outputs[0].forEach((ref, i) => expectBits(outputs[1][i], ref, `${JSON.stringify(inShape)} output ${i}`));
    }
  });
});
