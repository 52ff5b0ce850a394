// The WebAssembly SIMD implementation of the kernel interfaces: Kernels
// (gemm, wasm/gemm.ts), CellKernels (the LSTM/GRU cells and row sums,
// wasm/cells.ts), ConvKernels (wasm/conv.ts, wasm/pool.ts, wrapped in
// wasm-conv.ts), Adam (wasm/adam.ts, wasm-adam.ts), NormKernels (batch
// normalization: wasm/norm.ts, wasm-norm.ts) and FloatAllocator
// (buffers in the module's memory), built
// by scripts/build-wasm.js into dist/wasm/kernels.wasm.
//
// Pure TypeScript, no Node imports: the caller hands in the module's bytes
// or a compiled WebAssembly.Module (node/kernels/setup.ts reads the file
// in Node and compiles it once for every thread; a browser fetches it), so
// the same .wasm runs in Node, worker threads and browser tabs.
//
// Memory (docs/design.md, "Never detach an ArrayBuffer"): one WebAssembly.Memory
// is created at its full size up front, imported by the module and never
// grown, because growing detaches the old buffer and slows every
// typed-array loop of the isolate from then on. The heap over it
// (wasm-heap.ts) hands out Float32Array views and places each call's
// operands; the cell steps' wrappers are wasm-cells.ts.
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
import { wasmCellSteps, type CellExports } from './wasm-cells.js';
import { wasmConvKernels, type ConvExports, type WasmConvKernels } from './wasm-conv.js';
import { wasmAdam, type AdamExports } from './wasm-adam.js';
import type { NormKernels } from './norm.js';
import { wasmNorm, type NormExports } from './wasm-norm.js';
import { isDim, tooShort, WasmHeap } from './wasm-heap.js';

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

export interface WasmKernelsOptions {
  /**
   * Size of the WebAssembly memory in bytes, fixed for the life of the
   * kernels (rounded up to 64 KiB pages). Default 256 MiB. It must hold every
   * buffer allocated with alloc() plus, during a call with operands outside
   * the memory, copies of them.
   */
  memoryBytes?: number;
}

export interface WasmKernels extends Kernels, CellKernels, VectorKernels, WasmConvKernels, NormKernels, FloatAllocator {
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

interface KernelExports extends CellExports, ConvExports, AdamExports, NormExports {
  heapBase(): number;
  workspaceBytes(): number;
  setWorkspace(ptr: number): void;
  gemm(transA: number, transB: number, m: number, n: number, k: number,
    a: number, b: number, c: number, accumulate: number): void;
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
  const module = source instanceof WA.Module ? source : await WA.compile(source);
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
  const module = source instanceof WA.Module ? source : new WA.Module(source);
  const instance = new WA.Instance(module, { env: { memory } });
  return wrap(instance, memory);
}

function wrap(instance: WasmInstance, memory: WasmMemory): WasmKernels {
  const ex = instance.exports as KernelExports;
  const heap = new WasmHeap(memory.buffer, ex.heapBase());
  const workspace = heap.bump(ex.workspaceBytes(), 'the gemm workspace');
  ex.setWorkspace(workspace);
  if (workspace <= 0) throw new RangeError('wasm kernels: the module has no static data offset (heapBase is 0)');
  const place = (arr: Float32Array, len: number, copyIn: boolean, written: boolean, what: string): number => heap.place(arr, len, copyIn, written, what);

  return {
    name: 'wasm-simd',
    memory,
    alloc: (n) => heap.alloc(n),
    free: (arr) => heap.free(arr),
    owns: (arr) => heap.owns(arr),
    bytesFree: () => heap.bytesFree(),
    bytesInUse: () => heap.bytesInUse(),

    gemm(transA, transB, m, n, k, a, b, c, accumulate) {
      if (!(isDim(m) && isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `gemm: M, N, K must be non-negative integers, got ${m}, ${n}, ${k}`);
      }
      const la = m * k, lb = k * n, lc = m * n;
      if (a.length < la) tooShort(a, la, 'gemm: A', transA ? `(K, M) = (${k}, ${m})` : `(M, K) = (${m}, ${k})`);
      if (b.length < lb) tooShort(b, lb, 'gemm: B', transB ? `(N, K) = (${n}, ${k})` : `(K, N) = (${k}, ${n})`);
      if (c.length < lc) tooShort(c, lc, 'gemm: C', `(M, N) = (${m}, ${n})`);
      if (lc === 0) return;
      // NOTE: copies of foreign operands live above the heap's top for this call only.
      const mark = heap.top;
      try {
        const pa = place(a, la, true, false, 'A');
        const pb = place(b, lb, true, false, 'B');
        const pc = place(c, lc, accumulate, true, 'C');
        ex.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, pa, pb, pc, accumulate ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    ...wasmCellSteps(ex, heap),
    ...wasmConvKernels(ex, heap),
    ...wasmAdam(ex, heap),
    ...wasmNorm(ex, heap),

    addInto(out, b, n) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `addInto: n must be a non-negative integer, got ${n}`);
      if (out.length < n) tooShort(out, n, 'addInto: out', `n=${n}`);
      if (b.length < n) tooShort(b, n, 'addInto: b', `n=${n}`);
      if (n === 0) return;
      const mark = heap.top;
      try {
        const po = place(out, n, true, true, 'out');
        const pb = place(b, n, true, false, 'b');
        ex.addVec(po, pb, n);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    scale(x, n, s) {
      if (!isDim(n)) throw dptError('DPT_ERR_SHAPE', `scale: n must be a non-negative integer, got ${n}`);
      if (x.length < n) tooShort(x, n, 'scale: x', `n=${n}`);
      if (n === 0) return;
      const mark = heap.top;
      try {
        ex.scaleVec(place(x, n, true, true, 'x'), n, s);
        heap.flush();
      } finally {
        heap.release(mark);
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
      const mark = heap.top;
      try {
        const pp = place(params.subarray(from, to), n, true, true, 'params');
        const pg = place(grad.subarray(from, to), n, true, false, 'grad');
        const pv = mu !== 0 ? place(velocity!.subarray(from, to), n, true, true, 'velocity') : 0;
        ex.sgdUpdate(pp, pg, pv, n, lr, mu, wd, nesterov ? 1 : 0, decay ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },

    addRowSums(db, dG, R, N) {
      if (!(isDim(R) && isDim(N))) {
        throw dptError('DPT_ERR_SHAPE', `addRowSums: R, N must be non-negative integers, got ${R}, ${N}`);
      }
      if (db.length < N) tooShort(db, N, 'addRowSums: db', `N=${N}`);
      if (dG.length < R * N) tooShort(dG, R * N, 'addRowSums: dG', `(R, N) = (${R}, ${N})`);
      if (R === 0 || N === 0) return;
      const mark = heap.top;
      try {
        const pdb = place(db, N, true, true, 'db');
        const pdG = place(dG, R * N, true, false, 'dG');
        ex.addRowSums(pdb, pdG, R, N);
        heap.flush();
      } finally {
        heap.release(mark);
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
      const mark = heap.top;
      try {
        const pb = place(b, n * k, true, false, 'B');
        const pp = place(packed, len, false, true, 'packed');
        ex.packBWhole(transB ? 1 : 0, n, k, pb, pp);
        heap.flush();
      } finally {
        heap.release(mark);
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
      const mark = heap.top;
      try {
        const pa = place(a, la, true, false, 'A');
        const pp = place(packed, lp, true, false, 'packed');
        const pc = place(c, lc, accumulate, true, 'C');
        ex.gemmPackedB(0, m, n, k, pa, pp, pc, accumulate ? 1 : 0);
        heap.flush();
      } finally {
        heap.release(mark);
      }
    },
  };
}
