// Training through the core (buildModel, computeBatch, applyStep) with the
// WebAssembly kernels against the TypeScript ones:
//   - models without recurrent layers train to the SAME weightsSha256 (the
//     wasm gemm and row sums are bit-identical; everything else is shared);
//   - the LSTM and GRU agree WITHIN TOLERANCE (the wasm cells' exp / tanh are
//     polynomials, src/tensor/cells.ts), and each kind is deterministic;
//   - with the wasm kernels active, no kernel call gets an operand outside
//     the wasm memory (no copy per call).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeDataset } from '../../src/data/binary.js';
import type { Dataset } from '../../src/data/dataset.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { activeKernelName, useKernels } from '../../src/tensor/setup.js';
import { leafGradient } from '../../src/train/step.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { fingerprint, RUNS, type Fingerprint } from '../browser/fingerprint.js';
import { fingerprintBlob } from '../browser/mnist-subset.js';
import { newKernels } from './wasm-helpers.js';

let ds: Dataset;
beforeAll(async () => {
  ds = decodeDataset(await fingerprintBlob());
});
afterEach(() => useKernels(null));

function runWith(kind: 'wasm' | 'ts', name: string): Fingerprint {
  useKernels(kind === 'wasm' ? newKernels(128 * 1024 * 1024) : null);
  expect(activeKernelName()).toBe(kind === 'wasm' ? 'wasm-simd' : 'typescript');
  return fingerprint(RUNS.find((r) => r.name === name)!, ds);
}

describe('weightsSha256 with the wasm and the TypeScript kernels', () => {
  it('MLP (dense, batchnorm, relu, dropout, softmax, L2, momentum): bit-identical', () => {
    const wasm = runWith('wasm', 'mlp');
    const ts = runWith('ts', 'mlp');
    expect(Number.isFinite(wasm.loss)).toBe(true);
    expect(wasm.weightsSha256).toBe(ts.weightsSha256);
  });

  it('CNN (conv2d, max and average pooling, Adam): bit-identical', () => {
    const wasm = runWith('wasm', 'cnn');
    const ts = runWith('ts', 'cnn');
    expect(Number.isFinite(wasm.loss)).toBe(true);
    expect(wasm.weightsSha256).toBe(ts.weightsSha256);
  });

  it('CNN with batch normalization per channel (ghost batch norm, SGD): bit-identical', () => {
    const wasm = runWith('wasm', 'cnn-bn');
    const ts = runWith('ts', 'cnn-bn');
    expect(Number.isFinite(wasm.loss)).toBe(true);
    expect(wasm.weightsSha256).toBe(ts.weightsSha256);
  });

  for (const name of ['lstm', 'gru']) {
    it(`${name}: within tolerance, and deterministic for each kind`, () => {
      const wasm = runWith('wasm', name);
      const wasm2 = runWith('wasm', name); // a fresh instance: other addresses, same bits
      const ts = runWith('ts', name);
      expect(wasm2.weightsSha256).toBe(wasm.weightsSha256);
      expect(Number.isFinite(wasm.loss)).toBe(true);
      expect(Math.abs(wasm.loss - ts.loss)).toBeLessThan(1e-4 * Math.abs(ts.loss) + 1e-5);
      let worst = 0;
      for (let i = 0; i < ts.params.length; i++) {
        worst = Math.max(worst, Math.abs(wasm.params[i] - ts.params[i]) / (1e-3 + Math.abs(ts.params[i])));
      }
      // NOTE: cell differences of a few float32 ulps, carried through 6 SGD steps.
      expect(worst).toBeLessThan(1e-4);
      expect(wasm.weightsSha256).not.toBe(ts.weightsSha256); // if this fails, the cells became bit-identical: tighten the test
    });
  }
});

describe('no copy per call with the wasm kernels active', () => {
  it('every gemm, cell, convolution and batch norm operand of a training step lives in the wasm memory', () => {
    const wk = newKernels(128 * 1024 * 1024);
    const foreign: string[] = [];
    const check = (op: string, ...arrs: (Float32Array | null)[]): void => {
      arrs.forEach((a, i) => { if (a !== null && !wk.owns(a)) foreign.push(`${op} operand ${i}`); });
    };
    // The same kernels, with every operand checked on the way in.
    const spy: WasmKernels = {
      ...wk,
      gemm: (tA, tB, m, n, k, a, b, c, acc) => { check('gemm', a, b, c); wk.gemm(tA, tB, m, n, k, a, b, c, acc); },
      gemmPackedB: (m, n, k, a, tB, b, p, c, acc) => { check('gemmPackedB', a, p, c); wk.gemmPackedB(m, n, k, a, tB, b, p, c, acc); },
      packB: (tB, n, k, b, p) => { check('packB', b, p); wk.packB(tB, n, k, b, p); },
      lstmForwardStep: (B, T, H, t, ...x) => { check('lstmForwardStep', ...x); wk.lstmForwardStep(B, T, H, t, ...x); },
      lstmBackwardStep: (B, T, H, t, ...x) => { check('lstmBackwardStep', ...x); wk.lstmBackwardStep(B, T, H, t, ...x); },
      gruForwardStep: (B, T, H, t, ...x) => { check('gruForwardStep', ...x); wk.gruForwardStep(B, T, H, t, ...x); },
      gruBackwardStep: (B, T, H, t, ...x) => { check('gruBackwardStep', ...x); wk.gruBackwardStep(B, T, H, t, ...x); },
      addRowSums: (db, dG, R, N) => { check('addRowSums', db, dG); wk.addRowSums(db, dG, R, N); },
      convForward: (y, x, W, b, g, N, keep, scratch) => { check('convForward', y, x, W, b, keep, scratch); wk.convForward(y, x, W, b, g, N, keep, scratch); },
      convBackward: (dx, dW, db, dy, x, W, g, N, keep, scratch) => {
        check('convBackward', dx, dW, db, dy, W, keep, scratch);
        wk.convBackward(dx, dW, db, dy, x, W, g, N, keep, scratch);
      },
      maxPoolForward: (y, a, x, g, N) => { check('maxPoolForward', y, a, x); wk.maxPoolForward(y, a, x, g, N); },
      maxPoolBackward: (dx, dy, a, g, N) => { check('maxPoolBackward', dx, dy, a); wk.maxPoolBackward(dx, dy, a, g, N); },
      avgPoolForward: (y, x, g, N, c) => { check('avgPoolForward', y, x); wk.avgPoolForward(y, x, g, N, c); },
      avgPoolBackward: (dx, dy, g, N, c) => { check('avgPoolBackward', dx, dy); wk.avgPoolBackward(dx, dy, g, N, c); },
      moments: (m, v, x, N, C, S) => { check('moments', x); wk.moments(m, v, x, N, C, S); },
      normalize: (y, xh, x, m, r, g, b, N, C, S) => { check('normalize', y, xh, x, g, b); wk.normalize(y, xh, x, m, r, g, b, N, C, S); },
      gradSums: (sg, sgx, dy, xh, N, C, S) => { check('gradSums', dy, xh); wk.gradSums(sg, sgx, dy, xh, N, C, S); },
      trainInputGrad: (dx, dy, xh, k, sg, sgx, N, C, S) => { check('trainInputGrad', dx, dy, xh); wk.trainInputGrad(dx, dy, xh, k, sg, sgx, N, C, S); },
      evalInputGrad: (dx, dy, k, N, C, S) => { check('evalInputGrad', dx, dy); wk.evalInputGrad(dx, dy, k, N, C, S); },
    };
    useKernels(spy);
    for (const run of RUNS) {
      const model = buildModel(run.spec);
      initModel(model, 1);
      expect(wk.owns(model.params) && wk.owns(model.grads)).toBe(true);
      const rows = 5;
      const x = allocFloats(rows * model.inSize);
      x.set(ds.x.subarray(0, rows * model.inSize));
      const y = allocFloats(rows);
      y.set(ds.y.subarray(0, rows));
      const out = new Float32Array(model.size + 2);
      leafGradient(model, getLoss(run.loss), x, y, rows, { training: true, seed: 1, step: 0, rowOffset: 0 }, out);
      expect(Number.isFinite(out[model.size])).toBe(true);
    }
    expect(foreign).toEqual([]);
  });
});
