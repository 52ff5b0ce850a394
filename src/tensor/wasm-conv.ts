// The WebAssembly SIMD convolution and pooling kernels (wasm/conv.ts,
// wasm/pool.ts) behind the ConvKernels interface (conv-kernels.ts), on the
// kernels' heap (wasm-heap.ts): operands that live in the module's memory
// are used in place, others are copied in (and, if written, out) for the
// call. No garbage per call: the geometry goes into one block of wasm
// memory reserved when the kernels are instantiated, length messages are
// built only on failure, no closure or array is made per call.
import { dptError } from '../errors.js';
import type { WindowGeometry } from '../nn/conv-geometry.js';
import type { ConvKernels } from './conv-kernels.js';
import { tooShort, type WasmHeap } from './wasm-heap.js';

/** The module's convolution and pooling exports (pointers are byte offsets; g the geometry block). */
export interface ConvExports {
  convKeepFloats(g: number, N: number): number;
  convScratchFloats(g: number, N: number): number;
  convForward(g: number, N: number, y: number, x: number, w: number, b: number, keep: number, scratch: number): void;
  convBackward(g: number, N: number, dx: number, dw: number, db: number, dy: number, w: number, keep: number, scratch: number): void;
  maxPoolForward(g: number, N: number, y: number, argmax: number, x: number): void;
  maxPoolBackward(g: number, N: number, dx: number, dy: number, argmax: number): void;
  avgPoolForward(g: number, N: number, y: number, x: number, countIncludePad: number): void;
  avgPoolBackward(g: number, N: number, dx: number, dy: number, countIncludePad: number): void;
  setConvMethod(m: number): void;
}

/** The convolution kernels, and the choice of method (for measurements: both give the same bits). */
export interface WasmConvKernels extends ConvKernels {
  /**
   * 'direct' (the default: direct kernels where they apply, measured
   * faster) or 'im2col' (im2col + the gemm for the forward pass and the
   * filter gradient). Kept so that bench/conv.ts can measure both.
   */
  setConvMethod(method: 'direct' | 'im2col'): void;
}

const GEOMETRY_INTS = 14;

/** The ConvKernels of an instantiated module (the caller names them). */
export function wasmConvKernels(ex: ConvExports, heap: WasmHeap): Omit<WasmConvKernels, 'name'> {
  const gPtr = heap.bump(GEOMETRY_INTS * 4, 'the convolution geometry');
  const gBlock = new Int32Array(heap.buffer, gPtr, GEOMETRY_INTS);

  /** Writes g into the block; N checked. */
  function setGeometry(op: string, g: WindowGeometry, N: number): void {
    if (!(Number.isInteger(N) && N >= 0 && N < 2 ** 31)) {
      throw dptError('DPT_ERR_SHAPE', `${op}: N must be a non-negative integer, got ${N}`);
    }
    gBlock[0] = g.C; gBlock[1] = g.H; gBlock[2] = g.W; gBlock[3] = g.O;
    gBlock[4] = g.kh; gBlock[5] = g.kw; gBlock[6] = g.sh; gBlock[7] = g.sw;
    gBlock[8] = g.dh; gBlock[9] = g.dw; gBlock[10] = g.pt; gBlock[11] = g.pl;
    gBlock[12] = g.Ho; gBlock[13] = g.Wo;
  }

  const shapeOf = (g: WindowGeometry, N: number): string =>
    `N=${N} of [${g.C}, ${g.H}, ${g.W}] -> [${g.O}, ${g.Ho}, ${g.Wo}], window ${g.kh}x${g.kw}`;

  /** Checks arr holds len floats (op and name for the message, built only on failure). */
  function need(arr: Float32Array, len: number, op: string, name: string, g: WindowGeometry, N: number): void {
    if (arr.length < len) tooShort(arr, len, `${op}: ${name}`, shapeOf(g, N));
  }

  return {
    setConvMethod(method) {
      if (method !== 'direct' && method !== 'im2col') {
        throw dptError('DPT_ERR_CONFIG', `setConvMethod: method must be 'direct' or 'im2col', got ${String(method)}`);
      }
      ex.setConvMethod(method === 'direct' ? 0 : 1);
    },

    convKeepLength(g, N) {
      setGeometry('convKeepLength', g, N);
      return ex.convKeepFloats(gPtr, N);
    },
    convScratchLength(g, N) {
      setGeometry('convScratchLength', g, N);
      return ex.convScratchFloats(gPtr, N);
    },

    convForward(y, x, W, b, g, N, keep, scratch) {
      const op = 'convForward';
      setGeometry(op, g, N);
      const K = g.C * g.kh * g.kw, lx = N * g.C * g.H * g.W, ly = N * g.O * g.Ho * g.Wo;
      const lk = ex.convKeepFloats(gPtr, N), ls = ex.convScratchFloats(gPtr, N);
      need(x, lx, op, 'x', g, N);
      need(y, ly, op, 'y', g, N);
      need(W, g.O * K, op, 'W', g, N);
      if (b !== null) need(b, g.O, op, 'b', g, N);
      need(keep, lk, op, 'keep', g, N);
      need(scratch, ls, op, 'scratch', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const py = heap.place(y, ly, false, true, 'y');
        const px = heap.place(x, lx, true, false, 'x');
        const pw = heap.place(W, g.O * K, true, false, 'W');
        const pb = b === null ? 0 : heap.place(b, g.O, true, false, 'b');
        const pk = heap.place(keep, lk, false, true, 'keep');
        const ps = heap.place(scratch, ls, false, false, 'scratch');
        ex.convForward(gPtr, N, py, px, pw, pb, pk, ps);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    convBackward(dx, dW, db, dy, _x, W, g, N, keep, scratch) {
      const op = 'convBackward';
      setGeometry(op, g, N);
      const K = g.C * g.kh * g.kw, lx = N * g.C * g.H * g.W, ly = N * g.O * g.Ho * g.Wo;
      const lk = ex.convKeepFloats(gPtr, N), ls = ex.convScratchFloats(gPtr, N);
      if (dx !== null) need(dx, lx, op, 'dx', g, N);
      need(dW, g.O * K, op, 'dW', g, N);
      if (db !== null) need(db, g.O, op, 'db', g, N);
      need(dy, ly, op, 'dy', g, N);
      need(W, g.O * K, op, 'W', g, N);
      need(keep, lk, op, 'keep', g, N);
      need(scratch, ls, op, 'scratch', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const pdx = dx === null ? 0 : heap.place(dx, lx, false, true, 'dx');
        const pdw = heap.place(dW, g.O * K, true, true, 'dW');
        const pdb = db === null ? 0 : heap.place(db, g.O, true, true, 'db');
        const pdy = heap.place(dy, ly, true, false, 'dy');
        const pw = heap.place(W, g.O * K, true, false, 'W');
        const pk = heap.place(keep, lk, true, false, 'keep');
        const ps = heap.place(scratch, ls, false, false, 'scratch');
        ex.convBackward(gPtr, N, pdx, pdw, pdb, pdy, pw, pk, ps);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    maxPoolForward(y, argmax, x, g, N) {
      const op = 'maxPoolForward';
      setGeometry(op, g, N);
      const lx = N * g.C * g.H * g.W, ly = N * g.C * g.Ho * g.Wo;
      need(x, lx, op, 'x', g, N);
      need(y, ly, op, 'y', g, N);
      need(argmax, ly, op, 'argmax', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const py = heap.place(y, ly, false, true, 'y');
        const pa = heap.place(argmax, ly, false, true, 'argmax');
        const px = heap.place(x, lx, true, false, 'x');
        ex.maxPoolForward(gPtr, N, py, pa, px);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    maxPoolBackward(dx, dy, argmax, g, N) {
      const op = 'maxPoolBackward';
      setGeometry(op, g, N);
      const lx = N * g.C * g.H * g.W, ly = N * g.C * g.Ho * g.Wo;
      need(dx, lx, op, 'dx', g, N);
      need(dy, ly, op, 'dy', g, N);
      need(argmax, ly, op, 'argmax', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const pdx = heap.place(dx, lx, false, true, 'dx');
        const pdy = heap.place(dy, ly, true, false, 'dy');
        const pa = heap.place(argmax, ly, true, false, 'argmax');
        ex.maxPoolBackward(gPtr, N, pdx, pdy, pa);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    avgPoolForward(y, x, g, N, countIncludePad) {
      const op = 'avgPoolForward';
      setGeometry(op, g, N);
      const lx = N * g.C * g.H * g.W, ly = N * g.C * g.Ho * g.Wo;
      need(x, lx, op, 'x', g, N);
      need(y, ly, op, 'y', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const py = heap.place(y, ly, false, true, 'y');
        const px = heap.place(x, lx, true, false, 'x');
        ex.avgPoolForward(gPtr, N, py, px, countIncludePad ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    avgPoolBackward(dx, dy, g, N, countIncludePad) {
      const op = 'avgPoolBackward';
      setGeometry(op, g, N);
      const lx = N * g.C * g.H * g.W, ly = N * g.C * g.Ho * g.Wo;
      need(dx, lx, op, 'dx', g, N);
      need(dy, ly, op, 'dy', g, N);
      if (N === 0) return;
      const mark = heap.top;
      try {
        const pdx = heap.place(dx, lx, false, true, 'dx');
        const pdy = heap.place(dy, ly, true, false, 'dy');
        ex.avgPoolBackward(gPtr, N, pdx, pdy, countIncludePad ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },
  };
}
