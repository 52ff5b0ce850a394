// The LSTM and GRU cell steps of the WebAssembly kernels (wasm/cells.ts),
// once per timestep: checkCell() the dimensions, then operand() checks each
// operand's length and places it (in place, or copied in and, if written,
// out) into the heap's reused pointer array: tuples and closures per operand
// were most of what an LSTM step allocated.
import { dptError } from '../errors.js';
import type { CellKernels } from './cells.js';
import { isPos, tooShort, type WasmHeap } from './wasm-heap.js';

/** The cell exports of the module (wasm/cells.ts); pointers are byte offsets into its memory. */
export interface CellExports {
  lstmForwardStep(B: number, T: number, H: number, t: number,
    act: number, zh: number, bias: number, c: number, tc: number, hPrev: number, h: number): void;
  lstmBackwardStep(B: number, T: number, H: number, t: number,
    act: number, c: number, tc: number, dy: number, dh: number, dc: number, dG: number, dGt: number): void;
  gruForwardStep(B: number, T: number, H: number, t: number,
    act: number, zh: number, bih: number, bhh: number, hn: number, hPrev: number, h: number): void;
  gruBackwardStep(B: number, T: number, H: number, t: number,
    act: number, hn: number, hPrev: number, dy: number, dh: number, dGx: number, dGh: number, dGt: number): void;
}

function checkCell(op: string, B: number, T: number, H: number, t: number): void {
  if (!(isPos(B) && isPos(T) && isPos(H) && Number.isInteger(t) && t >= 0 && t < T)) {
    throw dptError('DPT_ERR_SHAPE', `${op}: B, T, H must be positive integers and 0 <= t < T, got ${B}, ${T}, ${H}, ${t}`);
  }
}

function operand(
  heap: WasmHeap, i: number, op: string, arr: Float32Array | null, len: number, name: string, written: boolean, B: number, T: number, H: number,
): void {
  if (arr === null) {
    heap.ptrs[i] = 0;
    return;
  }
  if (arr.length < len) tooShort(arr, len, `${op}: ${name}`, `B=${B} T=${T} H=${H}`);
  heap.ptrs[i] = heap.place(arr, len, true, written, name);
}

type CellSteps = Pick<CellKernels, 'lstmForwardStep' | 'lstmBackwardStep' | 'gruForwardStep' | 'gruBackwardStep'>;

export function wasmCellSteps(ex: CellExports, heap: WasmHeap): CellSteps {
  return {
    lstmForwardStep(B, T, H, t, act, zh, bias, c, tc, hPrev, h) {
      const op = 'lstmForwardStep', G = 4 * H;
      checkCell(op, B, T, H, t);
      const mark = heap.top;
      try {
        operand(heap, 0, op, act, B * T * G, 'act', true, B, T, H);
        operand(heap, 1, op, zh, B * G, 'zh', false, B, T, H);
        operand(heap, 2, op, bias, G, 'bias', false, B, T, H);
        operand(heap, 3, op, c, B * (T + 1) * H, 'c', true, B, T, H);
        operand(heap, 4, op, tc, B * T * H, 'tc', true, B, T, H);
        operand(heap, 5, op, hPrev, B * T * H, 'hPrev', true, B, T, H);
        operand(heap, 6, op, h, B * H, 'h', true, B, T, H);
        const p = heap.ptrs;
        ex.lstmForwardStep(B, T, H, t, p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    lstmBackwardStep(B, T, H, t, act, c, tc, dy, dh, dc, dG, dGt) {
      const op = 'lstmBackwardStep', G = 4 * H;
      checkCell(op, B, T, H, t);
      const mark = heap.top;
      try {
        operand(heap, 0, op, act, B * T * G, 'act', false, B, T, H);
        operand(heap, 1, op, c, B * (T + 1) * H, 'c', false, B, T, H);
        operand(heap, 2, op, tc, B * T * H, 'tc', false, B, T, H);
        operand(heap, 3, op, dy, B * T * H, 'dy', false, B, T, H);
        operand(heap, 4, op, dh, B * H, 'dh', false, B, T, H);
        operand(heap, 5, op, dc, B * H, 'dc', true, B, T, H);
        operand(heap, 6, op, dG, B * T * G, 'dG', true, B, T, H);
        operand(heap, 7, op, dGt, B * G, 'dGt', true, B, T, H);
        const p = heap.ptrs;
        ex.lstmBackwardStep(B, T, H, t, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    gruForwardStep(B, T, H, t, act, zh, bih, bhh, hn, hPrev, h) {
      const op = 'gruForwardStep', G = 3 * H;
      checkCell(op, B, T, H, t);
      const mark = heap.top;
      try {
        operand(heap, 0, op, act, B * T * G, 'act', true, B, T, H);
        operand(heap, 1, op, zh, B * G, 'zh', false, B, T, H);
        operand(heap, 2, op, bih, G, 'bih', false, B, T, H);
        operand(heap, 3, op, bhh, G, 'bhh', false, B, T, H);
        operand(heap, 4, op, hn, B * T * H, 'hn', true, B, T, H);
        operand(heap, 5, op, hPrev, B * T * H, 'hPrev', true, B, T, H);
        operand(heap, 6, op, h, B * H, 'h', true, B, T, H);
        const p = heap.ptrs;
        ex.gruForwardStep(B, T, H, t, p[0], p[1], p[2], p[3], p[4], p[5], p[6]);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    gruBackwardStep(B, T, H, t, act, hn, hPrev, dy, dh, dGx, dGh, dGt) {
      const op = 'gruBackwardStep', G = 3 * H;
      checkCell(op, B, T, H, t);
      const mark = heap.top;
      try {
        operand(heap, 0, op, act, B * T * G, 'act', false, B, T, H);
        operand(heap, 1, op, hn, B * T * H, 'hn', false, B, T, H);
        operand(heap, 2, op, hPrev, B * T * H, 'hPrev', false, B, T, H);
        operand(heap, 3, op, dy, B * T * H, 'dy', false, B, T, H);
        operand(heap, 4, op, dh, B * H, 'dh', true, B, T, H);
        operand(heap, 5, op, dGx, B * T * G, 'dGx', true, B, T, H);
        operand(heap, 6, op, dGh, B * T * G, 'dGh', true, B, T, H);
        operand(heap, 7, op, dGt, B * G, 'dGt', true, B, T, H);
        const p = heap.ptrs;
        ex.gruBackwardStep(B, T, H, t, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },
  };
}
