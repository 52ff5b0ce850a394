// The WebAssembly SIMD implementation of the kernel interfaces: Kernels
// (gemm, wasm/gemm.ts), CellKernels (the LSTM/GRU cells and row sums,
// wasm/cells.ts), ConvKernels (wasm/conv.ts, wasm/pool.ts, wrapped in
// wasm-conv.ts) and FloatAllocator (buffers in the module's memory), built
// by scripts/build-wasm.js into dist/wasm/kernels.wasm.
//
// Pure TypeScript, no Node imports: the caller hands in the module's bytes
// or a compiled WebAssembly.Module (worker/kernels-setup.ts reads the file
// in Node and compiles it once for every thread; a browser fetches it), so
// the same .wasm runs in Node, worker threads and browser tabs.
//
// Memory (DESIGN.md, "Never detach an ArrayBuffer"): one WebAssembly.Memory
// is created at its full size up front, imported by the module and never
// grown, because growing detaches the old buffer and slows every
// typed-array loop of the isolate from then on. alloc(n) hands out
// Float32Array views into it; free() gives them back (first-fit reuse of
// the freed blocks, coalesced, so memory in use stays the sum of the live
// buffers: Workspace frees its old buffer when it grows). Running out is an
// error that names options.memoryBytes.
//
// Speed: the kernels work on pointers into that memory. Operands that are
// views into it (see owns()) are used in place; any other Float32Array is
// copied in (and, if written, back out) for the call, which is correct but
// costs a pass over each operand. useKernels() (setup.ts) therefore makes
// this the process's allocator, so that workspaces, caches, parameters and
// gradients are allocated here.
//
// Exactness: gemm and addRowSums are bit-identical to the TypeScript
// reference (kernels.ts, cells.ts); the cells agree with it within about
// 2e-7 relative (polynomial exp / tanh, see wasm/cells.ts) and give the same
// bits in every engine. test/tensor/wasm-kernels.test.ts and
// wasm-cells.test.ts check both.

import { dptError } from '../errors.js';
import type { FloatAllocator } from './alloc.js';
import type { CellKernels } from './cells.js';
import type { Kernels } from './kernels.js';
import type { VectorKernels } from './vector.js';
import { wasmConvKernels, type ConvExports, type WasmConvKernels, type WasmHeap } from './wasm-conv.js';
import { wasmAdam, type AdamExports } from './wasm-adam.js';

// NOTE: tsconfig's lib is ES2022 without DOM and @types/node 20 does not
// declare WebAssembly, so the few parts used here are typed locally.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
/** A compiled module (WebAssembly.Module), opaque here. */
export interface WasmModule {
  readonly __wasmModule?: never;
}
interface WasmInstance {
  readonly exports: unknown;
}
interface WasmApi {
  Memory: new (descriptor: { initial: number; maximum?: number }) => WasmMemory;
  Module: new (bytes: ArrayBuffer | ArrayBufferView) => WasmModule;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
  compile(bytes: ArrayBuffer | ArrayBufferView): Promise<WasmModule>;
  instantiate(module: WasmModule, imports: object): Promise<WasmInstance>;
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export const DEFAULT_WASM_MEMORY_BYTES = 256 * 1024 * 1024;
const PAGE = 65536;
const ALIGN = 64; // cache line; the kernels only need 4 (floats) or 16 (vectors)

export interface WasmKernelsOptions {
  /**
   * Size of the WebAssembly memory in bytes, fixed for the life of the
   * kernels (rounded up to 64 KiB pages). Default 256 MiB. It must hold every
   * buffer allocated with alloc() plus, during a call with operands outside
   * the memory, copies of them.
   */
  memoryBytes?: number;
}

export interface WasmKernels extends Kernels, CellKernels, VectorKernels, WasmConvKernels, FloatAllocator {
  readonly name: string;
  /** The module's memory; its buffer never changes (the memory never grows). */
  readonly memory: WasmMemory;
  /** A zero-filled Float32Array of n floats in the wasm memory, 64-byte aligned. */
  alloc(n: number): Float32Array;
  /** Gives a buffer from alloc() back (the very view); its bytes are reused by later alloc() calls. */
  free(arr: Float32Array): void;
  /** Whether arr is a view into the wasm memory (the kernels then use it in place). */
  owns(arr: Float32Array): boolean;
  /** Bytes alloc() can still hand out (free blocks included). */
  bytesFree(): number;
  /** Bytes held by live alloc() buffers. */
  bytesInUse(): number;
}

interface KernelExports extends ConvExports, AdamExports {
  heapBase(): number;
  workspaceBytes(): number;
  setWorkspace(ptr: number): void;
  gemm(transA: number, transB: number, m: number, n: number, k: number,
    a: number, b: number, c: number, accumulate: number): void;
  lstmForwardStep(B: number, T: number, H: number, t: number,
    act: number, zh: number, bias: number, c: number, tc: number, hPrev: number, h: number): void;
  lstmBackwardStep(B: number, T: number, H: number, t: number,
    act: number, c: number, tc: number, dy: number, dh: number, dc: number, dG: number, dGt: number): void;
  gruForwardStep(B: number, T: number, H: number, t: number,
    act: number, zh: number, bih: number, bhh: number, hn: number, hPrev: number, h: number): void;
  gruBackwardStep(B: number, T: number, H: number, t: number,
    act: number, hn: number, hPrev: number, dy: number, dh: number, dGx: number, dGh: number, dGt: number): void;
  addRowSums(db: number, dG: number, R: number, N: number): void;
  packedBFloats(n: number, k: number): number;
  packBWhole(transB: number, n: number, k: number, b: number, dst: number): void;
  gemmPackedB(transA: number, m: number, n: number, k: number, a: number, packed: number, c: number, accumulate: number): void;
  addVec(out: number, b: number, n: number): void;
  scaleVec(x: number, n: number, s: number): void;
  sgdUpdate(params: number, grad: number, vel: number, n: number,
    lr: number, mu: number, wd: number, nesterov: number, decay: number): void;
}

/** The module's bytes, or the module compiled already (e.g. once, then sent to workers). */
export type WasmSource = ArrayBuffer | ArrayBufferView | WasmModule;

function memoryFor(options: WasmKernelsOptions): WasmMemory {
  const bytes = options.memoryBytes ?? DEFAULT_WASM_MEMORY_BYTES;
  if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes > 4 * 1024 * 1024 * 1024 - PAGE) {
    throw dptError('DPT_ERR_CONFIG',
      `options.memoryBytes must be a positive integer below 4 GiB, got ${String(options.memoryBytes)}`);
  }
  const pages = Math.ceil(bytes / PAGE);
  // initial === maximum: the memory can never grow, so its buffer is never detached.
  return new WA.Memory({ initial: pages, maximum: pages });
}

/**
 * Compile the module once (e.g. to post the WebAssembly.Module to worker
 * threads, which then instantiate it with their own memory, no recompile).
 */
export function compileWasmKernels(bytes: ArrayBuffer | ArrayBufferView): Promise<WasmModule> {
  return WA.compile(bytes);
}

/** Compile the module synchronously (Node, worker threads, web workers). */
export function compileWasmKernelsSync(bytes: ArrayBuffer | ArrayBufferView): WasmModule {
  return new WA.Module(bytes);
}

/** Whether x is a compiled WebAssembly.Module (e.g. to validate one received from another thread). */
export function isWasmModule(x: unknown): x is WasmModule {
  return x instanceof WA.Module;
}

/** Instantiate the kernels (async; works for modules of any size in browsers). */
export async function instantiateWasmKernels(source: WasmSource, options: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const memory = memoryFor(options);
  const module = source instanceof WA.Module ? source : await WA.compile(source as ArrayBuffer | ArrayBufferView);
  const instance = await WA.instantiate(module, { env: { memory } });
  return wrap(instance, memory);
}

/**
 * Instantiate the kernels synchronously (Node, worker threads, web workers;
 * a browser's main thread may refuse to compile a large module synchronously,
 * so pass it an already compiled WebAssembly.Module there).
 */
export function instantiateWasmKernelsSync(source: WasmSource, options: WasmKernelsOptions = {}): WasmKernels {
  const memory = memoryFor(options);
  const module = source instanceof WA.Module ? source : new WA.Module(source as ArrayBuffer | ArrayBufferView);
  const instance = new WA.Instance(module, { env: { memory } });
  return wrap(instance, memory);
}

const isDim = (x: number): boolean => Number.isInteger(x) && x >= 0 && x < 2 ** 31;
const isPos = (x: number): boolean => Number.isInteger(x) && x >= 1 && x < 2 ** 31;

function wrap(instance: WasmInstance, memory: WasmMemory): WasmKernels {
  const ex = instance.exports as unknown as KernelExports;
  const buffer = memory.buffer;
  const limit = buffer.byteLength;
  const roundUp = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;

  // ---- allocation
  // [heapBase, top) holds the gemm workspace and the alloc() buffers; free
  // blocks inside it are kept in `holes` (sorted by address, never adjacent:
  // freeing coalesces) and reused first-fit. Above `top`, a call copies
  // operands that live outside the memory, for that call only.
  let top = roundUp(ex.heapBase());
  const live = new Map<number, number>(); // byte offset -> bytes, of every live alloc() buffer
  const holes: { start: number; end: number }[] = [];
  let inUse = 0;

  function outOfMemory(bytes: number, what: string): never {
    let largest = limit - top;
    let holeBytes = 0;
    for (const h of holes) { largest = Math.max(largest, h.end - h.start); holeBytes += h.end - h.start; }
    throw dptError('DPT_ERR_MEMORY',
      `wasm kernels: out of WebAssembly memory allocating ${bytes} bytes for ${what} ` +
      `(${limit - top + holeBytes} of ${limit} free, largest block ${largest}); raise options.memoryBytes`);
  }

  // Bump allocation above top; `what` names the caller in the out-of-memory message.
  function bump(bytes: number, what: string): number {
    const ptr = top;
    const end = roundUp(ptr + bytes);
    if (end > limit) outOfMemory(bytes, what);
    top = end;
    return ptr;
  }

  const workspace = bump(ex.workspaceBytes(), 'the gemm workspace');
  ex.setWorkspace(workspace);
  if (workspace <= 0) throw new RangeError('wasm kernels: the module has no static data offset (heapBase is 0)');

  function owns(arr: Float32Array): boolean {
    return arr.buffer === buffer;
  }

  function alloc(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw dptError('DPT_ERR_CONFIG', `wasm kernels: alloc(n) needs a non-negative integer n, got ${String(n)}`);
    }
    if (n === 0) return new Float32Array(buffer, 0, 0); // holds nothing; free() ignores it
    const size = roundUp(n * 4);
    let ptr = -1;
    for (let i = 0; i < holes.length; i++) {
      const h = holes[i];
      if (h.end - h.start >= size) {
        ptr = h.start;
        h.start += size;
        if (h.start === h.end) holes.splice(i, 1);
        break;
      }
    }
    if (ptr < 0) ptr = bump(size, `alloc(${n})`);
    live.set(ptr, size);
    inUse += size;
    const view = new Float32Array(buffer, ptr, n);
    view.fill(0); // a reused block, or memory above `top` that held an earlier call's copies
    return view;
  }

  function free(arr: Float32Array): void {
    if (arr.length === 0) return;
    const ptr = arr.byteOffset;
    const size = live.get(ptr);
    if (!owns(arr) || size === undefined || roundUp(arr.byteLength) !== size) {
      throw new RangeError('wasm kernels: free() takes a buffer returned by alloc() (the same view, not a subarray), once');
    }
    live.delete(ptr);
    inUse -= size;
    let start = ptr, end = ptr + size;
    // Insert in address order, merging with the neighbours.
    let i = 0;
    while (i < holes.length && holes[i].end < start) i++;
    if (i < holes.length && holes[i].end === start) { start = holes[i].start; holes.splice(i, 1); }
    if (i < holes.length && holes[i].start === end) { end = holes[i].end; holes.splice(i, 1); }
    if (end === top) top = start; // the block is the last one: give it back to the bump region
    else holes.splice(i, 0, { start, end });
  }

  // ---- operands
  // Pointer to arr's first `len` floats in the wasm memory. An operand
  // outside the memory is copied into scratch above `top` (and, if the call
  // writes it, copied back by flush()); release() resets `top` afterwards.
  const copyBack: { arr: Float32Array; ptr: number; len: number }[] = [];
  function place(arr: Float32Array, len: number, copyIn: boolean, written: boolean, what: string): number {
    if (owns(arr)) return arr.byteOffset;
    const ptr = bump(len * 4, `a copy of ${what}`);
    if (copyIn) new Float32Array(buffer, ptr, len).set(arr.subarray(0, len));
    if (written) copyBack.push({ arr, ptr, len });
    return ptr;
  }
  // One call: `const mark = top`, place the operands and run the kernel, flush()
  // (copies written operands back), and in a finally release(mark) (gives the
  // copies' space back). Written out in each method rather than as a helper
  // taking a closure: a closure per call is garbage on the hot path.
  function release(mark: number): void {
    copyBack.length = 0;
    top = mark;
  }
  function flush(): void {
    for (const { arr, ptr, len } of copyBack) arr.set(new Float32Array(buffer, ptr, len));
    copyBack.length = 0;
  }

  // The callers check `arr.length < len` themselves and build the message only
  // then: a template string per call was most of what a training step allocated.
  function tooShort(arr: Float32Array, len: number, what: string, shape: string): never {
    throw dptError('DPT_ERR_SHAPE', `${what} has ${arr.length} floats, needs ${len} for ${shape}`);
  }

  // A cell step (the LSTM's and GRU's, once per timestep): checkCell() its
  // dimensions, then operand() checks each operand's length and places it (in
  // place, or copied in and, if written, out) into ptrs, reused from call to
  // call: tuples and closures per operand were most of what an LSTM step
  // allocated.
  const ptrs: number[] = [0, 0, 0, 0, 0, 0, 0, 0];
  function checkCell(op: string, B: number, T: number, H: number, t: number): void {
    if (!(isPos(B) && isPos(T) && isPos(H) && Number.isInteger(t) && t >= 0 && t < T)) {
      throw dptError('DPT_ERR_SHAPE', `${op}: B, T, H must be positive integers and 0 <= t < T, got ${B}, ${T}, ${H}, ${t}`);
    }
  }
  function operand(
    i: number, op: string, arr: Float32Array | null, len: number, name: string, written: boolean, B: number, T: number, H: number,
  ): void {
    if (arr === null) {
      ptrs[i] = 0;
      return;
    }
    if (arr.length < len) tooShort(arr, len, `${op}: ${name}`, `B=${B} T=${T} H=${H}`);
    ptrs[i] = place(arr, len, true, written, name);
  }

  // The convolution and pooling wrappers (wasm-conv.ts) on the same heap.
  const heap: WasmHeap = {
    buffer, owns, reserve: bump, mark: () => top, place, flush, release, tooShort,
  };
  const conv = wasmConvKernels(ex, heap);
  const adam = wasmAdam(ex, heap);

  return {
    ...conv,
    ...adam,
    name: 'wasm-simd',
    memory,
    alloc,
    free,
    owns,
    bytesFree: () => {
      let n = limit - top;
      for (const h of holes) n += h.end - h.start;
      return n;
    },
    bytesInUse: () => inUse,

    gemm(transA, transB, m, n, k, a, b, c, accumulate) {
      if (!(isDim(m) && isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `gemm: M, N, K must be non-negative integers, got ${m}, ${n}, ${k}`);
      }
      const la = m * k, lb = k * n, lc = m * n;
      if (a.length < la) tooShort(a, la, 'gemm: A', transA ? `(K, M) = (${k}, ${m})` : `(M, K) = (${m}, ${k})`);
      if (b.length < lb) tooShort(b, lb, 'gemm: B', transB ? `(N, K) = (${n}, ${k})` : `(K, N) = (${k}, ${n})`);
      if (c.length < lc) tooShort(c, lc, 'gemm: C', `(M, N) = (${m}, ${n})`);
      if (lc === 0) return;
      // NOTE: copies of foreign operands live above `top` for this call only.
      const mark = top;
      try {
        const pa = place(a, la, true, false, 'A');
        const pb = place(b, lb, true, false, 'B');
        const pc = place(c, lc, accumulate, true, 'C');
        ex.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, pa, pb, pc, accumulate ? 1 : 0);
        flush();
      } finally {
        release(mark);
      }
    },

    lstmForwardStep(B, T, H, t, act, zh, bias, c, tc, hPrev, h) {
      const op = 'lstmForwardStep', G = 4 * H;
      checkCell(op, B, T, H, t);
      const mark = top;
      try {
        operand(0, op, act, B * T * G, 'act', true, B, T, H);
        operand(1, op, zh, B * G, 'zh', false, B, T, H);
        operand(2, op, bias, G, 'bias', false, B, T, H);
        operand(3, op, c, B * (T + 1) * H, 'c', true, B, T, H);
        operand(4, op, tc, B * T * H, 'tc', true, B, T, H);
        operand(5, op, hPrev, B * T * H, 'hPrev', true, B, T, H);
        operand(6, op, h, B * H, 'h', true, B, T, H);
        ex.lstmForwardStep(B, T, H, t, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6]);
        flush();
      } finally {
        release(mark);
      }
    },

    lstmBackwardStep(B, T, H, t, act, c, tc, dy, dh, dc, dG, dGt) {
      const op = 'lstmBackwardStep', G = 4 * H;
      checkCell(op, B, T, H, t);
      const mark = top;
      try {
        operand(0, op, act, B * T * G, 'act', false, B, T, H);
        operand(1, op, c, B * (T + 1) * H, 'c', false, B, T, H);
        operand(2, op, tc, B * T * H, 'tc', false, B, T, H);
        operand(3, op, dy, B * T * H, 'dy', false, B, T, H);
        operand(4, op, dh, B * H, 'dh', false, B, T, H);
        operand(5, op, dc, B * H, 'dc', true, B, T, H);
        operand(6, op, dG, B * T * G, 'dG', true, B, T, H);
        operand(7, op, dGt, B * G, 'dGt', true, B, T, H);
        ex.lstmBackwardStep(B, T, H, t, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7]);
        flush();
      } finally {
        release(mark);
      }
    },

    gruForwardStep(B, T, H, t, act, zh, bih, bhh, hn, hPrev, h) {
      const op = 'gruForwardStep', G = 3 * H;
      checkCell(op, B, T, H, t);
      const mark = top;
      try {
        operand(0, op, act, B * T * G, 'act', true, B, T, H);
        operand(1, op, zh, B * G, 'zh', false, B, T, H);
        operand(2, op, bih, G, 'bih', false, B, T, H);
        operand(3, op, bhh, G, 'bhh', false, B, T, H);
        operand(4, op, hn, B * T * H, 'hn', true, B, T, H);
        operand(5, op, hPrev, B * T * H, 'hPrev', true, B, T, H);
        operand(6, op, h, B * H, 'h', true, B, T, H);
        ex.gruForwardStep(B, T, H, t, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6]);
        flush();
      } finally {
        release(mark);
      }
    },

    gruBackwardStep(B, T, H, t, act, hn, hPrev, dy, dh, dGx, dGh, dGt) {
      const op = 'gruBackwardStep', G = 3 * H;
      checkCell(op, B, T, H, t);
      const mark = top;
      try {
        operand(0, op, act, B * T * G, 'act', false, B, T, H);
        operand(1, op, hn, B * T * H, 'hn', false, B, T, H);
        operand(2, op, hPrev, B * T * H, 'hPrev', false, B, T, H);
        operand(3, op, dy, B * T * H, 'dy', false, B, T, H);
        operand(4, op, dh, B * H, 'dh', true, B, T, H);
        operand(5, op, dGx, B * T * G, 'dGx', true, B, T, H);
        operand(6, op, dGh, B * T * G, 'dGh', true, B, T, H);
        operand(7, op, dGt, B * G, 'dGt', true, B, T, H);
        ex.gruBackwardStep(B, T, H, t, ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], ptrs[5], ptrs[6], ptrs[7]);
        flush();
      } finally {
        release(mark);
      }
    },

    addInto(out, b, n) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `addInto: n must be a non-negative integer, got ${n}`);
      if (out.length < n) tooShort(out, n, 'addInto: out', `n=${n}`);
      if (b.length < n) tooShort(b, n, 'addInto: b', `n=${n}`);
      if (n === 0) return;
      const mark = top;
      try {
        const po = place(out, n, true, true, 'out');
        const pb = place(b, n, true, false, 'b');
        ex.addVec(po, pb, n);
        flush();
      } finally {
        release(mark);
      }
    },

    scale(x, n, s) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `scale: n must be a non-negative integer, got ${n}`);
      if (x.length < n) tooShort(x, n, 'scale: x', `n=${n}`);
      if (n === 0) return;
      const mark = top;
      try {
        ex.scaleVec(place(x, n, true, true, 'x'), n, s);
        flush();
      } finally {
        release(mark);
      }
    },

    sgdRange(params, grad, velocity, from, to, lr, mu, wd, nesterov, decay) {
      if (!(isDim(from) && isDim(to) && from <= to)) {
        throw dptError('DPT_ERR_SHAPE', `sgdRange: need integers 0 <= from <= to, got ${from}, ${to}`);
      }
      const n = to - from;
      if (params.length < to) tooShort(params, to, 'sgdRange: params', `[${from}, ${to})`);
      if (grad.length < to) tooShort(grad, to, 'sgdRange: grad', `[${from}, ${to})`);
      if (mu !== 0 && (velocity === null || velocity.length < to)) {
        throw dptError('DPT_ERR_SHAPE', `sgdRange: momentum needs a velocity of at least ${to} floats`);
      }
      if (n === 0) return;
      const mark = top;
      try {
        const pp = place(params.subarray(from, to), n, true, true, 'params');
        const pg = place(grad.subarray(from, to), n, true, false, 'grad');
        const pv = mu !== 0 ? place(velocity!.subarray(from, to), n, true, true, 'velocity') : 0;
        ex.sgdUpdate(pp, pg, pv, n, lr, mu, wd, nesterov ? 1 : 0, decay ? 1 : 0);
        flush();
      } finally {
        release(mark);
      }
    },

    addRowSums(db, dG, R, N) {
      if (!(isDim(R) && isDim(N))) {
        throw dptError('DPT_ERR_SHAPE', `addRowSums: R, N must be non-negative integers, got ${R}, ${N}`);
      }
      if (db.length < N) tooShort(db, N, 'addRowSums: db', `N=${N}`);
      if (dG.length < R * N) tooShort(dG, R * N, 'addRowSums: dG', `(R, N) = (${R}, ${N})`);
      if (R === 0 || N === 0) return;
      const mark = top;
      try {
        const pdb = place(db, N, true, true, 'db');
        const pdG = place(dG, R * N, true, false, 'dG');
        ex.addRowSums(pdb, pdG, R, N);
        flush();
      } finally {
        release(mark);
      }
    },

    packedBLength(n, k) {
      if (!(isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `packedBLength: N, K must be non-negative integers, got ${n}, ${k}`);
      }
      return ex.packedBFloats(n, k);
    },

    packB(transB, n, k, b, packed) {
      if (!(isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `packB: N, K must be non-negative integers, got ${n}, ${k}`);
      }
      const len = ex.packedBFloats(n, k);
      if (b.length < n * k) tooShort(b, n * k, 'packB: B', transB ? `(N, K) = (${n}, ${k})` : `(K, N) = (${k}, ${n})`);
      if (packed.length < len) tooShort(packed, len, 'packB: packed', `packedBLength(${n}, ${k})`);
      if (len === 0) return;
      const mark = top;
      try {
        const pb = place(b, n * k, true, false, 'B');
        const pp = place(packed, len, false, true, 'packed');
        ex.packBWhole(transB ? 1 : 0, n, k, pb, pp);
        flush();
      } finally {
        release(mark);
      }
    },

    gemmPackedB(m, n, k, a, _transB, _b, packed, c, accumulate) {
      if (!(isDim(m) && isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `gemmPackedB: M, N, K must be non-negative integers, got ${m}, ${n}, ${k}`);
      }
      const la = m * k, lc = m * n, lp = ex.packedBFloats(n, k);
      if (a.length < la) tooShort(a, la, 'gemmPackedB: A', `(M, K) = (${m}, ${k})`);
      if (packed.length < lp) tooShort(packed, lp, 'gemmPackedB: packed', `packedBLength(${n}, ${k})`);
      if (c.length < lc) tooShort(c, lc, 'gemmPackedB: C', `(M, N) = (${m}, ${n})`);
      if (lc === 0) return;
      const mark = top;
      try {
        const pa = place(a, la, true, false, 'A');
        const pp = place(packed, lp, true, false, 'packed');
        const pc = place(c, lc, accumulate, true, 'C');
        ex.gemmPackedB(0, m, n, k, pa, pp, pc, accumulate ? 1 : 0);
        flush();
      } finally {
        release(mark);
      }
    },
  };
}
