// The WebAssembly SIMD kernels against the TypeScript reference, BIT FOR BIT
// (the exactness contract in src/tensor/kernels.ts): every form, accumulate
// on and off, operands inside and outside the wasm memory, awkward shapes,
// shapes that cross the cache blocking, and row independence.

import { beforeAll, describe, expect, it } from 'vitest';
import { tsKernels } from '../../src/tensor/kernels.js';
import {
  compileWasmKernels, instantiateWasmKernels, instantiateWasmKernelsSync, type WasmKernels,
} from '../../src/tensor/wasm-kernels.js';
import { expectBits, fill, wasmBytes as builtWasm } from './wasm-helpers.js';

const SIZES = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 33, 64, 100, 129];
const FORMS: ReadonlyArray<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
const formName = (tA: boolean, tB: boolean): string => (tA ? 't' : 'n') + (tB ? 't' : 'n');

let wasmBytes: Uint8Array;
let wk: WasmKernels;

beforeAll(() => {
  wasmBytes = builtWasm();
  wk = instantiateWasmKernelsSync(wasmBytes, { memoryBytes: 64 * 1024 * 1024 });
});

/** A buffer of n floats inside the wasm memory or in an ordinary ArrayBuffer. */
function buf(n: number, inside: boolean): Float32Array {
  return inside ? wk.alloc(n) : new Float32Array(n);
}

/**
 * One comparison: C from the wasm kernels equals C from tsKernels, bit for bit.
 * Without accumulate, C starts as NaN (it must be overwritten, not added to).
 */
function check(tA: boolean, tB: boolean, m: number, n: number, k: number, accumulate: boolean, inside: boolean, seed: number): void {
  const label = `${formName(tA, tB)} M=${m} N=${n} K=${k} acc=${accumulate} ${inside ? 'in' : 'out of'} wasm memory`;
  const a = fill(buf(m * k, inside), seed);
  const b = fill(buf(k * n, inside), seed + 1);
  const c = buf(m * n, inside);
  if (accumulate) fill(c, seed + 2); else c.fill(NaN);
  const ref = Float32Array.from(c);
  tsKernels.gemm(tA, tB, m, n, k, a, b, ref, accumulate);
  wk.gemm(tA, tB, m, n, k, a, b, c, accumulate);
  expectBits(c, ref, label);
}

describe('wasm kernels: bit-identical to tsKernels', () => {
  for (const [tA, tB] of FORMS) {
    it(`form ${formName(tA, tB)}: awkward shapes, accumulate on and off, inside and outside wasm memory`, () => {
      const before = wk.bytesFree();
      let t = 0;
      for (const m of SIZES) {
        for (const n of SIZES) {
          // Every (M, N) pair, with K cycling through the sizes (all 14 K per M).
          const k = SIZES[t % SIZES.length];
          const accumulate = t % 2 === 1;
          const inside = t % 4 < 2;
          const seed = 1000 * t;
          const mark = wk.bytesFree();
          check(tA, tB, m, n, k, accumulate, inside, seed);
          // The same shape the other way round (accumulate and placement flipped).
          check(tA, tB, m, n, k, !accumulate, !inside, seed + 7);
          expect(wk.bytesFree()).toBeLessThanOrEqual(mark);
          t++;
        }
      }
      // Copies of foreign operands are released after each call.
      expect(before - wk.bytesFree()).toBeLessThan(64 * 1024 * 1024);
    });

    it(`form ${formName(tA, tB)}: shapes that cross the cache blocking (K > 256, M > 130, N > 512)`, () => {
      check(tA, tB, 130, 1030, 300, false, true, 7);
      check(tA, tB, 131, 1027, 785, true, false, 8);
      check(tA, tB, 64, 128, 784, false, true, 9);
      check(tA, tB, 257, 9, 513, true, true, 10);
    });
  }

  it('k = 0 zeroes C without accumulate and leaves it with accumulate', () => {
    for (const [tA, tB] of FORMS) {
      for (const accumulate of [false, true]) {
        const c = fill(wk.alloc(6), 3);
        const ref = Float32Array.from(c);
        tsKernels.gemm(tA, tB, 2, 3, 0, new Float32Array(0), new Float32Array(0), ref, accumulate);
        wk.gemm(tA, tB, 2, 3, 0, new Float32Array(0), wk.alloc(0), c, accumulate);
        expectBits(c, ref, `k=0 ${formName(tA, tB)} acc=${accumulate}`);
      }
    }
  });

  it('mixes operands inside and outside wasm memory in one call', () => {
    const m = 17, n = 33, k = 100;
    for (const [tA, tB] of FORMS) {
      for (let mask = 0; mask < 8; mask++) {
        const a = fill(buf(m * k, (mask & 1) !== 0), 11 + mask);
        const b = fill(buf(k * n, (mask & 2) !== 0), 12 + mask);
        const c = fill(buf(m * n, (mask & 4) !== 0), 13 + mask);
        const ref = Float32Array.from(c);
        tsKernels.gemm(tA, tB, m, n, k, a, b, ref, true);
        wk.gemm(tA, tB, m, n, k, a, b, c, true);
        expectBits(c, ref, `${formName(tA, tB)} placement mask ${mask}`);
      }
    }
  });

  it('works on subarray views at unaligned offsets', () => {
    const m = 9, n = 17, k = 33;
    const pool = fill(wk.alloc(3 + m * k + 5 + k * n + 7 + m * n), 21);
    const a = pool.subarray(3, 3 + m * k);
    const b = pool.subarray(3 + m * k + 5, 3 + m * k + 5 + k * n);
    const c = pool.subarray(pool.length - m * n);
    for (const [tA, tB] of FORMS) {
      const ref = Float32Array.from(c);
      tsKernels.gemm(tA, tB, m, n, k, a, b, ref, true);
      wk.gemm(tA, tB, m, n, k, a, b, c, true);
      expectBits(c, ref, `unaligned ${formName(tA, tB)}`);
    }
  });
});

describe('wasm kernels: row independence', () => {
  // Rows r0 .. r0+rows of op(A): a (rows, K) matrix, stored as the form expects.
  function rowsOf(a: Float32Array, tA: boolean, m: number, k: number, r0: number, rows: number): Float32Array {
    const out = wk.alloc(rows * k);
    for (let i = 0; i < rows; i++) {
      for (let p = 0; p < k; p++) {
        if (tA) out[p * rows + i] = a[p * m + r0 + i]!;
        else out[i * k + p] = a[(r0 + i) * k + p]!;
      }
    }
    return out;
  }

  for (const [tA, tB] of FORMS) {
    it(`form ${formName(tA, tB)}: rows computed alone equal the same rows inside a larger M`, () => {
      for (const [m, n, k] of [[100, 33, 129], [129, 17, 300], [257, 40, 64]] as const) {
        for (const accumulate of [false, true]) {
          const a = fill(wk.alloc(m * k), 31);
          const b = fill(wk.alloc(k * n), 32);
          const c0 = fill(wk.alloc(m * n), 33);
          const big = Float32Array.from(c0);
          wk.gemm(tA, tB, m, n, k, a, b, big, accumulate);
          for (const [r0, rows] of [[0, 1], [3, 5], [0, 4], [2, 6], [7, 9], [5, 11], [9, 12], [m - 3, 3], [1, m - 1]] as const) {
            const small = wk.alloc(rows * n);
            small.set(c0.subarray(r0 * n, (r0 + rows) * n));
            wk.gemm(tA, tB, rows, n, k, rowsOf(a, tA, m, k, r0, rows), b, small, accumulate);
            expectBits(small, big.subarray(r0 * n, (r0 + rows) * n),
              `${formName(tA, tB)} rows ${r0}..${r0 + rows} of M=${m} N=${n} K=${k} acc=${accumulate}`);
          }
        }
      }
    });
  }
});

describe('wasm kernels: memory and loading', () => {
  it('never grows or detaches its memory', () => {
    const buffer = wk.memory.buffer;
    const bytes = buffer.byteLength;
    check(false, false, 129, 129, 129, false, false, 41);
    wk.alloc(1024);
    expect(wk.memory.buffer).toBe(buffer);
    expect(wk.memory.buffer.byteLength).toBe(bytes);
  });

  it('alloc hands out zero-filled, 64-byte aligned views that owns() recognises', () => {
    const x = wk.alloc(10);
    const y = wk.alloc(3);
    expect(x.length).toBe(10);
    expect(Array.from(x).every((v) => v === 0)).toBe(true);
    expect(x.byteOffset % 64).toBe(0);
    expect(y.byteOffset % 64).toBe(0);
    expect(y.byteOffset).toBeGreaterThanOrEqual(x.byteOffset + 40);
    expect(wk.owns(x)).toBe(true);
    expect(wk.owns(x.subarray(2, 5))).toBe(true);
    expect(wk.owns(new Float32Array(10))).toBe(false);
  });

  it('refuses operands shorter than the shape, and fractional sizes, with DPT_ERR_SHAPE', () => {
    expect(() => wk.gemm(false, false, 4, 4, 4, new Float32Array(15), new Float32Array(16), new Float32Array(16), false))
      .toThrow(expect.objectContaining({ code: 'DPT_ERR_SHAPE', message: expect.stringContaining('A has 15 floats') }));
    expect(() => wk.gemm(false, true, 4, 4, 4, wk.alloc(16), wk.alloc(16), wk.alloc(15), true))
      .toThrow(expect.objectContaining({ code: 'DPT_ERR_SHAPE', message: expect.stringContaining('C has 15 floats') }));
    expect(() => wk.gemm(false, false, 2.5, 4, 4, wk.alloc(16), wk.alloc(16), wk.alloc(16), false))
      .toThrow(expect.objectContaining({ code: 'DPT_ERR_SHAPE', message: expect.stringContaining('non-negative integers') }));
  });

  it('reports running out of wasm memory and names the option', () => {
    const small = instantiateWasmKernelsSync(wasmBytes, { memoryBytes: 4 * 1024 * 1024 });
    expect(() => small.alloc(2 * 1024 * 1024)).toThrow(expect.objectContaining({
      code: 'DPT_ERR_MEMORY', message: expect.stringContaining('options.memoryBytes'),
    }));
    // A failed call leaves the allocator where it was.
    const free = small.bytesFree();
    expect(() => small.gemm(false, false, 1024, 1024, 1, new Float32Array(1024), new Float32Array(1024),
      new Float32Array(1024 * 1024), false)).toThrow(expect.objectContaining({ code: 'DPT_ERR_MEMORY' }));
    expect(small.bytesFree()).toBe(free);
  });

  it('rejects an invalid memoryBytes', () => {
    for (const memoryBytes of [0, -1, 1.5, 2 ** 33]) {
      expect(() => instantiateWasmKernelsSync(wasmBytes, { memoryBytes })).toThrow(expect.objectContaining({
        code: 'DPT_ERR_CONFIG', message: expect.stringContaining('options.memoryBytes'),
      }));
    }
  });

  it('instantiates asynchronously, and from a compiled module', async () => {
    const fromBytes = await instantiateWasmKernels(wasmBytes, { memoryBytes: 8 * 1024 * 1024 });
    const module = await compileWasmKernels(wasmBytes);
    const fromModule = instantiateWasmKernelsSync(module, { memoryBytes: 8 * 1024 * 1024 });
    for (const k of [fromBytes, fromModule]) {
      const a = fill(k.alloc(7 * 9), 51), b = fill(k.alloc(9 * 5), 52), c = k.alloc(7 * 5);
      const ref = new Float32Array(7 * 5);
      tsKernels.gemm(false, false, 7, 5, 9, a, b, ref, false);
      k.gemm(false, false, 7, 5, 9, a, b, c, false);
      expectBits(c, ref, k.name);
    }
  });
});
