// Node side of the WebAssembly kernels: finds and reads dist/wasm/kernels.wasm
// (built by scripts/build-wasm.js) and instantiates it with the pure loader
// in src/tensor/wasm-kernels.ts. Browsers fetch the file themselves.

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  instantiateWasmKernelsSync, type WasmKernels, type WasmKernelsOptions,
} from '../../src/tensor/wasm-kernels.js';

// This file runs compiled from dist/node/kernels/ and, under vitest, from node/kernels/.
const CANDIDATES = [
  new URL('../../wasm/kernels.wasm', import.meta.url), // dist/node/kernels -> dist/wasm
  new URL('../../dist/wasm/kernels.wasm', import.meta.url), // node/kernels -> dist/wasm
];

/** Path of the built kernels.wasm; throws if it has not been built. */
export function wasmKernelsPath(): string {
  for (const url of CANDIDATES) {
    const path = fileURLToPath(url);
    if (path.endsWith('kernels.wasm') && existsSync(path)) return path;
  }
  throw new Error('dist/wasm/kernels.wasm not found: run `node scripts/build-wasm.js` (part of `npm run build`)');
}

/** The bytes of kernels.wasm (e.g. to compile once and send the Module to worker threads). */
export function readWasmKernels(): Uint8Array {
  return readFileSync(wasmKernelsPath());
}

/** Read, compile and instantiate the WebAssembly SIMD kernels. */
export function loadWasmKernels(options: WasmKernelsOptions = {}): WasmKernels {
  return instantiateWasmKernelsSync(readWasmKernels(), options);
}
