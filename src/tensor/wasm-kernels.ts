// The WebAssembly SIMD implementation of Kernels (wasm/gemm.ts, built by
// scripts/build-wasm.js into dist/wasm/kernels.wasm).
//
// Pure TypeScript, no Node imports: the caller hands in the module's bytes
// or a compiled WebAssembly.Module (worker/wasm-load.ts reads the file in
// Node; a browser fetches it), so the same .wasm runs in Node, worker
// threads and browser tabs.
//
// Memory (DESIGN.md, "Never detach an ArrayBuffer"): one WebAssembly.Memory
// is created at its full size up front, imported by the module and never
// grown, because growing detaches the old buffer and slows every
// typed-array loop of the isolate from then on. A bump allocator hands out
// Float32Array views into it with alloc(n); nothing is freed one by one.
//
// Speed: gemm works on pointers into that memory. Operands that are views
// into it (see owns()) are used in place; any other Float32Array is copied
// in (and C copied back out), which is correct but costs a pass over each
// operand. Layers should therefore allocate their parameter, activation and
// gradient buffers with alloc() when these kernels are active.
//
// Exactness: bit-identical to tsKernels (see the contract in kernels.ts and
// the NOTE in wasm/gemm.ts); test/tensor/wasm-kernels.test.ts checks it.

import { dptError } from '../errors.js';
import type { Kernels } from './kernels.js';

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

export interface WasmKernels extends Kernels {
  /** The module's memory; its buffer never changes (the memory never grows). */
  readonly memory: WasmMemory;
  /** A zero-filled Float32Array of n floats in the wasm memory, 64-byte aligned. */
  alloc(n: number): Float32Array;
  /** Whether arr is a view into the wasm memory (gemm then uses it in place). */
  owns(arr: Float32Array): boolean;
  /** Bytes alloc() can still hand out. */
  bytesFree(): number;
}

interface GemmExports {
  heapBase(): number;
  workspaceBytes(): number;
  setWorkspace(ptr: number): void;
  gemm(transA: number, transB: number, m: number, n: number, k: number,
    a: number, b: number, c: number, accumulate: number): void;
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

function wrap(instance: WasmInstance, memory: WasmMemory): WasmKernels {
  const ex = instance.exports as unknown as GemmExports;
  const buffer = memory.buffer;
  const limit = buffer.byteLength;
  const roundUp = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;
  let top = roundUp(ex.heapBase());

  // Bump allocation; `what` names the caller in the out-of-memory message.
  function bump(bytes: number, what: string): number {
    const ptr = top;
    const end = roundUp(ptr + bytes);
    if (end > limit) {
      throw dptError('DPT_ERR_CONFIG',
        `wasm kernels: out of WebAssembly memory allocating ${bytes} bytes for ${what} ` +
        `(${limit - ptr} of ${limit} free); raise options.memoryBytes`);
    }
    top = end;
    return ptr;
  }

  const workspace = bump(ex.workspaceBytes(), 'the gemm workspace');
  ex.setWorkspace(workspace);

  function owns(arr: Float32Array): boolean {
    return arr.buffer === buffer;
  }

  function alloc(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw dptError('DPT_ERR_CONFIG', `wasm kernels: alloc(n) needs a non-negative integer n, got ${String(n)}`);
    }
    const ptr = bump(n * 4, `alloc(${n})`);
    const view = new Float32Array(buffer, ptr, n);
    view.fill(0); // memory above `top` may still hold an earlier call's scratch copies
    return view;
  }

  // Pointer to arr's data in the wasm memory, copying it into scratch if needed.
  function place(arr: Float32Array, len: number, copyIn: boolean, what: string): number {
    if (owns(arr)) return arr.byteOffset;
    const ptr = bump(len * 4, `a copy of ${what}`);
    if (copyIn) new Float32Array(buffer, ptr, len).set(arr.subarray(0, len));
    return ptr;
  }

  function need(arr: Float32Array, len: number, what: string, shape: string): void {
    if (arr.length < len) {
      throw dptError('DPT_ERR_SHAPE',
        `gemm: ${what} has ${arr.length} floats, needs ${len} for ${shape}`);
    }
  }

  return {
    name: 'wasm-simd',
    memory,
    alloc,
    owns,
    bytesFree: () => limit - top,
    gemm(transA, transB, m, n, k, a, b, c, accumulate) {
      if (!(isDim(m) && isDim(n) && isDim(k))) {
        throw dptError('DPT_ERR_SHAPE', `gemm: M, N, K must be non-negative integers, got ${m}, ${n}, ${k}`);
      }
      const la = m * k, lb = k * n, lc = m * n;
      need(a, la, 'A', transA ? `(K, M) = (${k}, ${m})` : `(M, K) = (${m}, ${k})`);
      need(b, lb, 'B', transB ? `(N, K) = (${n}, ${k})` : `(K, N) = (${k}, ${n})`);
      need(c, lc, 'C', `(M, N) = (${m}, ${n})`);
      if (lc === 0) return;
      // NOTE: copies of foreign operands live above `top` for this call only.
      const mark = top;
      try {
        const pa = place(a, la, true, 'A');
        const pb = place(b, lb, true, 'B');
        const pc = place(c, lc, accumulate, 'C');
        ex.gemm(transA ? 1 : 0, transB ? 1 : 0, m, n, k, pa, pb, pc, accumulate ? 1 : 0);
        if (!owns(c)) c.set(new Float32Array(buffer, pc, lc));
      } finally {
        top = mark;
      }
    },
  };
}
