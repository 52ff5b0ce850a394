// Node side of choosing the kernels, for the CLI's main thread and for every
// worker thread (src/tensor/setup.ts does the switching; this file reads and
// compiles dist/wasm/kernels.wasm).
//
// Threads: compile the module ONCE, in the main thread (kernelsModule()),
// and hand the WebAssembly.Module to each worker thread (workerData or
// postMessage: a Module is shared between threads, not copied, and nothing
// is detached); each thread then instantiates it with its own memory
// (setupKernels('wasm', { module })), which takes well under a millisecond.
// Every worker of a run must compute with the same kind (the wasm cells of
// the LSTM/GRU differ from the TypeScript ones in the last bits).

import { dptError } from '../../src/errors.js';
import { useKernels, type KernelKind } from '../../src/tensor/setup.js';
import {
  compileWasmKernelsSync, instantiateWasmKernelsSync, isWasmModule, type WasmModule,
} from '../../src/tensor/wasm-kernels.js';
import { readWasmKernels } from './wasm-load.js';

export type { KernelKind } from '../../src/tensor/setup.js';
export type { WasmModule } from '../../src/tensor/wasm-kernels.js';

/** Environment variable that selects the kernels when no option does: `wasm` (default) or `ts`. */
export const KERNELS_ENV = 'DPTRAIN_KERNELS';

let compiled: WasmModule | null = null;

/** kernels.wasm compiled once per isolate (e.g. the main thread's, to post to worker threads). */
export function kernelsModule(): WasmModule {
  compiled ??= compileWasmKernelsSync(readWasmKernels());
  return compiled;
}

/** Checks a kernel kind from the command line or the environment; `what` names the option. */
export function parseKernelKind(value: string, what = '--kernels'): KernelKind {
  if (value === 'wasm' || value === 'ts') return value;
  throw dptError('DPT_ERR_USAGE', `${what} must be 'wasm' or 'ts', got '${value}'`);
}

/** The kind from $DPTRAIN_KERNELS, or 'wasm' when it is unset or empty. */
export function defaultKernelKind(): KernelKind {
  const v = process.env[KERNELS_ENV];
  return v === undefined || v === '' ? 'wasm' : parseKernelKind(v, `$${KERNELS_ENV}`);
}

export interface KernelsSetupOptions {
  /** The compiled module (from kernelsModule() of the main thread); default: compile it here. */
  module?: WasmModule;
  /** Size of this isolate's WebAssembly memory (fixed; default 256 MiB, see wasm-kernels.ts). */
  memoryBytes?: number;
}

/**
 * Makes this isolate (main thread or worker thread) compute with the given
 * kernels: 'wasm' instantiates the WebAssembly SIMD kernels (with their own
 * memory) and makes them the gemm, the cells and the allocator; 'ts' goes
 * back to the pure-TypeScript reference. Call it before building any model.
 * Returns the active kernels' name ('wasm-simd' or 'typescript').
 */
export function setupKernels(kind: KernelKind = defaultKernelKind(), options: KernelsSetupOptions = {}): string {
  if (kind === 'ts') {
    useKernels(null);
    return 'typescript';
  }
  if (options.module !== undefined && !isWasmModule(options.module)) {
    throw dptError('DPT_ERR_CONFIG', 'setupKernels: options.module must be a compiled WebAssembly.Module (kernelsModule())');
  }
  const k = instantiateWasmKernelsSync(options.module ?? kernelsModule(),
    options.memoryBytes !== undefined ? { memoryBytes: options.memoryBytes } : {});
  useKernels(k);
  return k.name;
}
