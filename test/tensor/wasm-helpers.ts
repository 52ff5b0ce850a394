// Shared by the wasm test files: the built kernels.wasm (rebuilt when older
// than its sources, so `vitest run` works on a fresh clone) and bit-level
// comparison helpers.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { uniform } from '../../src/random/counter.js';
import { instantiateWasmKernelsSync, type WasmKernels } from '../../src/tensor/wasm-kernels.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WASM = ROOT + 'dist/wasm/kernels.wasm';

let bytes: Uint8Array<ArrayBuffer> | null = null;

/** The bytes of dist/wasm/kernels.wasm, built first if missing or older than wasm/*.ts. */
export function wasmBytes(): Uint8Array<ArrayBuffer> {
  if (bytes !== null) return bytes;
  const sources = readdirSync(ROOT + 'wasm').filter((f) => f.endsWith('.ts')).map((f) => statSync(ROOT + 'wasm/' + f).mtimeMs);
  if (!existsSync(WASM) || statSync(WASM).mtimeMs < Math.max(...sources)) {
    execFileSync(process.execPath, [ROOT + 'scripts/build-wasm.js'], { stdio: 'inherit' });
  }
  bytes = new Uint8Array(readFileSync(WASM)); // a copy on its own ArrayBuffer, as WebAssembly.Module wants
  return bytes;
}

/** A fresh instance of the kernels with its own memory. */
export function newKernels(memoryBytes = 64 * 1024 * 1024): WasmKernels {
  return instantiateWasmKernelsSync(wasmBytes(), { memoryBytes });
}

/** Deterministic values in [-2, 2) with a few exact zeros and negative zeros. */
export function fill(arr: Float32Array, seed: number, scale = 4): Float32Array {
  for (let i = 0; i < arr.length; i++) {
    const u = uniform(seed, i);
    arr[i] = u < 0.02 ? 0 : u < 0.04 ? -0 : (uniform(seed, i, 1) - 0.5) * scale;
  }
  return arr;
}

/** Assert two float arrays are identical bit for bit (so -0 != +0 and NaN patterns count). */
export function expectBits(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  const x = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const y = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) {
      expect.fail(`${label}: element ${i} is ${actual[i]} (0x${x[i].toString(16)}), ` +
        `reference ${expected[i]} (0x${y[i].toString(16)})`);
    }
  }
}

/** Assert |a - e| <= atol + rtol |e| elementwise. */
export function expectClose(actual: Float32Array, expected: Float32Array, label: string, rtol = 1e-5, atol = 1e-6): void {
  expect(actual.length, label).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      expect.fail(`${label}: element ${i} is ${a}, reference ${e} (|diff| ${Math.abs(a - e)})`);
    }
  }
}
