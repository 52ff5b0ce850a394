// The WebAssembly Adam / AdamW update (wasm/adam.ts) and ReLU (wasm/vector.ts)
// behind VectorKernels' adamRange and relu* (vector.ts), on the kernels' heap (wasm-heap.ts):
// operands in the module's memory are used in place, others copied in and
// out for the call; no garbage per call.
import { dptError } from '../errors.js';
import type { VectorKernels } from './vector.js';
import { isDim, tooShort, type WasmHeap } from './wasm-heap.js';

export interface AdamExports {
  adamUpdate(params: number, grad: number, m: number, v: number, n: number,
    b1: number, b2: number, stepSize: number, sqrtBc2: number, eps: number,
    wd: number, shrink: number, decoupled: number, decay: number): void;
  reluForward(y: number, x: number, n: number): void;
  reluBackward(dx: number, dy: number, y: number, n: number): void;
}

export function wasmAdam(ex: AdamExports, heap: WasmHeap): Pick<VectorKernels, 'adamRange' | 'reluForward' | 'reluBackward'> {
  return {
    reluForward(y, x, n) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `reluForward: n must be a non-negative integer, got ${n}`);
      if (y.length < n) tooShort(y, n, 'reluForward: y', `n=${n}`);
      if (x.length < n) tooShort(x, n, 'reluForward: x', `n=${n}`);
      if (n === 0) return;
      const mark = heap.top;
      try {
        ex.reluForward(heap.place(y, n, false, true, 'y'), heap.place(x, n, true, false, 'x'), n);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    reluBackward(dx, dy, y, n) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `reluBackward: n must be a non-negative integer, got ${n}`);
      if (dx.length < n) tooShort(dx, n, 'reluBackward: dx', `n=${n}`);
      if (dy.length < n) tooShort(dy, n, 'reluBackward: dy', `n=${n}`);
      if (y.length < n) tooShort(y, n, 'reluBackward: y', `n=${n}`);
      if (n === 0) return;
      const mark = heap.top;
      try {
        ex.reluBackward(heap.place(dx, n, false, true, 'dx'), heap.place(dy, n, true, false, 'dy'), heap.place(y, n, true, false, 'y'), n);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    adamRange(params, grad, m, v, from, to, b1, b2, stepSize, sqrtBc2, eps, wd, shrink, decoupled, decay) {
      if (!(isDim(from) && isDim(to) && from <= to)) {
        throw dptError('DPT_ERR_SHAPE', `adamRange: need integers 0 <= from <= to, got ${from}, ${to}`);
      }
      if (params.length < to) tooShort(params, to, 'adamRange: params', `[${from}, ${to})`);
      if (grad.length < to) tooShort(grad, to, 'adamRange: grad', `[${from}, ${to})`);
      if (m.length < to) tooShort(m, to, 'adamRange: m', `[${from}, ${to})`);
      if (v.length < to) tooShort(v, to, 'adamRange: v', `[${from}, ${to})`);
      const n = to - from;
      if (n === 0) return;
      const off = from * 4;
      if (heap.owns(params) && heap.owns(grad) && heap.owns(m) && heap.owns(v)) {
        // In place: no subarray views (garbage) per call.
        ex.adamUpdate(params.byteOffset + off, grad.byteOffset + off, m.byteOffset + off, v.byteOffset + off, n,
          b1, b2, stepSize, sqrtBc2, eps, wd, shrink, decoupled ? 1 : 0, decay ? 1 : 0);
        return;
      }
      // A slice of each operand alone is copied in and out (another thread may own the rest).
      const mark = heap.top;
      try {
        const pp = heap.place(params.subarray(from, to), n, true, true, 'params');
        const pg = heap.place(grad.subarray(from, to), n, true, false, 'grad');
        const pm = heap.place(m.subarray(from, to), n, true, true, 'm');
        const pv = heap.place(v.subarray(from, to), n, true, true, 'v');
        ex.adamUpdate(pp, pg, pm, pv, n, b1, b2, stepSize, sqrtBc2, eps, wd, shrink, decoupled ? 1 : 0, decay ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },
  };
}
