// The WebAssembly SIMD batch normalization loops (wasm/norm.ts) behind the
// NormKernels interface (norm.ts), on the kernels' heap (wasm-heap.ts):
// float32 operands in the module's memory are used in place, others are
// copied in (and, if written, out) for the call; the per-channel float64
// values (C of them) are copied into the memory above the heap's top and
// back. No garbage per call: one Float64Array view of the whole memory is
// made once.
//
// With S = 1 (flat features and sequences: one value per row) there is
// nothing to vectorize along a row, and the TypeScript reference runs
// instead (the same bits by the contract).
import { dptError } from '../errors.js';
import { tsNorm, type NormKernels } from './norm.js';
import { isDim, tooShort, type WasmHeap } from './wasm-heap.js';

export interface NormExports {
  bnMoments(mean: number, varBiased: number, x: number, N: number, C: number, S: number): void;
  bnNormalize(y: number, xhat: number, x: number, mean: number, rstd: number, gamma: number, beta: number, N: number, C: number, S: number): void;
  bnGradSums(sumG: number, sumGx: number, dy: number, xhat: number, N: number, C: number, S: number): void;
  bnTrainInputGrad(dx: number, dy: number, xhat: number, k: number, sumG: number, sumGx: number, N: number, C: number, S: number): void;
  bnEvalInputGrad(dx: number, dy: number, k: number, N: number, C: number, S: number): void;
}

export function wasmNorm(ex: NormExports, heap: WasmHeap): Omit<NormKernels, 'name'> {
  const f64 = new Float64Array(heap.buffer);

  /** Checks N, C, S; returns N * C * S. */
  function dims(op: string, N: number, C: number, S: number): number {
    if (!(isDim(N) && isDim(C) && isDim(S))) {
      throw dptError('DPT_ERR_SHAPE', `${op}: N, C, S must be non-negative integers, got ${N}, ${C}, ${S}`);
    }
    return N * C * S;
  }
  /** Checks arr holds len floats (the message is built only on failure). */
  function need(arr: Float32Array, len: number, op: string, name: string, N: number, C: number, S: number): void {
    if (arr.length < len) tooShort(arr, len, `${op}: ${name}`, `(N, C, S) = (${N}, ${C}, ${S})`);
  }
  /** C float64 above the heap's top, holding `from` when given. */
  function channels(C: number, from: ArrayLike<number> | null): number {
    const ptr = heap.bump(C * 8, 'per-channel values');
    if (from !== null) for (let c = 0, i = ptr >> 3; c < C; c++, i++) f64[i] = from[c];
    return ptr;
  }
  function copyOut(to: Float64Array, ptr: number, C: number): void {
    for (let c = 0, i = ptr >> 3; c < C; c++, i++) to[c] = f64[i];
  }

  return {
    moments(mean, varBiased, x, N, C, S) {
      if (S === 1) { tsNorm.moments(mean, varBiased, x, N, C, S); return; }
      const op = 'bnMoments', len = dims(op, N, C, S);
      need(x, len, op, 'x', N, C, S);
      if (C === 0) return;
      const mark = heap.top;
      try {
        const pm = channels(C, null), pv = channels(C, null);
        ex.bnMoments(pm, pv, heap.place(x, len, true, false, 'x'), N, C, S);
        copyOut(mean, pm, C);
        copyOut(varBiased, pv, C);
      } finally {
        heap.release(mark);
      }
    },

    normalize(y, xhat, x, mean, rstd, gamma, beta, N, C, S) {
      if (S === 1) { tsNorm.normalize(y, xhat, x, mean, rstd, gamma, beta, N, C, S); return; }
      const op = 'bnNormalize', len = dims(op, N, C, S);
      need(y, len, op, 'y', N, C, S); need(xhat, len, op, 'xhat', N, C, S); need(x, len, op, 'x', N, C, S);
      need(gamma, C, op, 'gamma', N, C, S); need(beta, C, op, 'beta', N, C, S);
      if (len === 0) return;
      const mark = heap.top;
      try {
        const py = heap.place(y, len, false, true, 'y'), ph = heap.place(xhat, len, false, true, 'xhat');
        const px = heap.place(x, len, true, false, 'x');
        const pg = heap.place(gamma, C, true, false, 'gamma'), pb = heap.place(beta, C, true, false, 'beta');
        ex.bnNormalize(py, ph, px, channels(C, mean), channels(C, rstd), pg, pb, N, C, S);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    gradSums(sumG, sumGx, dy, xhat, N, C, S) {
      if (S === 1) { tsNorm.gradSums(sumG, sumGx, dy, xhat, N, C, S); return; }
      const op = 'bnGradSums', len = dims(op, N, C, S);
      need(dy, len, op, 'dy', N, C, S); need(xhat, len, op, 'xhat', N, C, S);
      if (C === 0) return;
      const mark = heap.top;
      try {
        const pg = channels(C, null), pgx = channels(C, null);
        ex.bnGradSums(pg, pgx, heap.place(dy, len, true, false, 'dy'), heap.place(xhat, len, true, false, 'xhat'), N, C, S);
        copyOut(sumG, pg, C);
        copyOut(sumGx, pgx, C);
      } finally {
        heap.release(mark);
      }
    },

    trainInputGrad(dx, dy, xhat, k, sumG, sumGx, N, C, S) {
      if (S === 1) { tsNorm.trainInputGrad(dx, dy, xhat, k, sumG, sumGx, N, C, S); return; }
      const op = 'bnTrainInputGrad', len = dims(op, N, C, S);
      need(dx, len, op, 'dx', N, C, S); need(dy, len, op, 'dy', N, C, S); need(xhat, len, op, 'xhat', N, C, S);
      if (len === 0) return;
      const mark = heap.top;
      try {
        const pdx = heap.place(dx, len, false, true, 'dx');
        const pdy = heap.place(dy, len, true, false, 'dy'), ph = heap.place(xhat, len, true, false, 'xhat');
        ex.bnTrainInputGrad(pdx, pdy, ph, channels(C, k), channels(C, sumG), channels(C, sumGx), N, C, S);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    evalInputGrad(dx, dy, k, N, C, S) {
      if (S === 1) { tsNorm.evalInputGrad(dx, dy, k, N, C, S); return; }
      const op = 'bnEvalInputGrad', len = dims(op, N, C, S);
      need(dx, len, op, 'dx', N, C, S); need(dy, len, op, 'dy', N, C, S);
      if (len === 0) return;
      const mark = heap.top;
      try {
        const pdx = heap.place(dx, len, false, true, 'dx');
        ex.bnEvalInputGrad(pdx, heap.place(dy, len, true, false, 'dy'), channels(C, k), N, C, S);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },
  };
}
