// The kernels for the library in Node: the package's kernels.wasm read from
// disk (worker/kernels-setup.ts), chosen once per process. Every entry point
// of the Node API that builds a model (createModel, loadModelFile, train)
// first makes sure a choice was made: the WebAssembly kernels, or what
// $DPTRAIN_KERNELS says, as the command line does, unless the kernels were
// chosen before (initKernels, or --kernels in the command line).
import { initKernels as initKernelsFromSource, parseKernelsOptions, type KernelName, type KernelsOptions } from '../../src/api/kernels.js';
import { kernelsChosen } from '../../src/tensor/setup.js';
import { defaultKernelKind, setupKernels } from '../../node/kernels/setup.js';

/**
 * Makes this process compute with the chosen kernels (default: the
 * WebAssembly SIMD kernels of the package). Call it before building or
 * loading models; without a call, the first of them chooses the default.
 */
export async function initKernels(options: KernelsOptions = {}): Promise<KernelName> {
  const o = parseKernelsOptions(options);
  // A source of the caller's (bytes, a module, an http URL) goes through the core's loader.
  if (o.wasm !== undefined && o.kind === 'wasm') return initKernelsFromSource(options);
  return setupKernels(o.kind, o.memoryBytes === undefined ? {} : { memoryBytes: o.memoryBytes }) as KernelName;
}

/** The default kernels, unless this process chose already (initKernels, the command line's --kernels). */
export function ensureKernels(): void {
  if (!kernelsChosen()) setupKernels(defaultKernelKind());
}
