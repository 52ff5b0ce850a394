// Which kernels this isolate (main thread, worker thread, browser tab or web
// worker) computes with: the three hooks of the core switched together, so
// they always agree:
//   gemm            setKernels      (kernels.ts)
//   cells, row sums setCellKernels  (cells.ts)
//   tree adds, SGD  setVectorKernels (vector.ts)
//   conv, pooling   setConvKernels  (conv.ts)
//   batch norm      setNormKernels  (norm.ts)
//   buffers         setAllocator    (alloc.ts: Workspace, buildModel's params and grads)
//
// Call it once, before any model is built (buffers allocated earlier stay
// where they are: correct, but copied in and out of wasm memory per call).
// Node: worker/kernels-setup.ts (setupKernels) reads and compiles the .wasm.
// Browsers: fetch dist/wasm/kernels.wasm and pass the bytes (or a compiled
// WebAssembly.Module) to useWasmKernels.
//
// Exactness: every worker of a run must use the same kind. The wasm gemm and
// row sums are bit-identical to the TypeScript reference, so models without
// recurrent layers train to the same bits either way; the LSTM and GRU
// cells differ in the last bits (polynomial exp / tanh, see cells.ts).

import { setAllocator } from './alloc.js';
import { setCellKernels } from './cells.js';
import { setConvKernels } from './conv.js';
import { kernels, setKernels, tsKernels } from './kernels.js';
import { setNormKernels } from './norm.js';
import { setVectorKernels } from './vector.js';
import {
  instantiateWasmKernels, instantiateWasmKernelsSync, type WasmKernels, type WasmKernelsOptions, type WasmSource,
} from './wasm-kernels.js';

export type KernelKind = 'wasm' | 'ts';

let activeWasm: WasmKernels | null = null;
let chosen = false;

/** Compute with these WebAssembly kernels (null: the pure-TypeScript reference, the default). */
export function useKernels(k: WasmKernels | null): void {
  activeWasm = k;
  chosen = true;
  setKernels(k ?? tsKernels);
  setCellKernels(k);
  setVectorKernels(k);
  setConvKernels(k);
  setNormKernels(k);
  setAllocator(k);
}

/** Whether this isolate chose its kernels (useKernels was called), or computes with the default. */
export function kernelsChosen(): boolean {
  return chosen;
}

/** The WebAssembly kernels in use, or null with the TypeScript ones. */
export function activeWasmKernels(): WasmKernels | null {
  return activeWasm;
}

/** 'wasm' or 'ts': what this isolate computes with. */
export function activeKernelKind(): KernelKind {
  return activeWasm !== null ? 'wasm' : 'ts';
}

/** The active kernels' name: 'wasm-simd' or 'typescript'. */
export function activeKernelName(): string {
  return kernels().name;
}

/**
 * Instantiate the WebAssembly kernels from bytes or a compiled module and
 * compute with them (async: works on a browser's main thread for any module
 * size). Returns them (e.g. for bytesFree()).
 */
export async function useWasmKernels(source: WasmSource, options: WasmKernelsOptions = {}): Promise<WasmKernels> {
  const k = await instantiateWasmKernels(source, options);
  useKernels(k);
  return k;
}

/** The same, synchronously (Node, worker threads, web workers; a browser main thread wants a compiled module). */
export function useWasmKernelsSync(source: WasmSource, options: WasmKernelsOptions = {}): WasmKernels {
  const k = instantiateWasmKernelsSync(source, options);
  useKernels(k);
  return k;
}
