// The TypeScript gemm (register tiles, skipped zeros) against a naive triple
// loop with the same float32 chain, BIT FOR BIT: the exactness contract at
// the top of src/tensor/kernels.ts. Every form, accumulate on and off,
// awkward shapes around the 4x4 tiles, zeros of A in the patterns the
// skipping looks for, the values that must turn it off (Inf and NaN in B, -0
// in C), and row independence.
import { describe, expect, it } from 'vitest';
import { uniform } from '../../src/random/counter.js';
import { tsKernels, tsKernelsDense, type Kernels } from '../../src/tensor/kernels.js';

const f = Math.fround;
const FORMS: ReadonlyArray<[boolean, boolean]> = [[false, false], [true, false], [false, true], [true, true]];
const formName = (tA: boolean, tB: boolean): string => (tA ? 't' : 'n') + (tB ? 't' : 'n');
const SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 15, 17, 33];

/** The contract, literally: C[i, j] = chain over p = 0..K-1 of c = fround(c + fround(op(A)[i, p] * op(B)[p, j])). */
function naiveGemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = accumulate ? c[i * n + j] : 0;
      for (let p = 0; p < k; p++) {
        const x = transA ? a[p * m + i] : a[i * k + p];
        const y = transB ? b[j * k + p] : b[p * n + j];
        s = f(s + f(x * y));
      }
      c[i * n + j] = s;
    }
  }
}

/** Deterministic values in [-2, 2), a fraction `zeros` of them exact zeros (half of those -0). */
function fill(arr: Float32Array, seed: number, zeros = 0.04): Float32Array {
  for (let i = 0; i < arr.length; i++) {
    const u = uniform(seed, i);
    arr[i] = u < zeros / 2 ? 0 : u < zeros ? -0 : (uniform(seed, i, 1) - 0.5) * 4;
  }
  return arr;
}

/** Bit-for-bit equality (so -0 != +0), naming the first differing element. */
function expectBits(actual: Float32Array, expected: Float32Array, label: string): void {
  expect(actual.length, label).toBe(expected.length);
  const x = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const y = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < x.length; i++) {
    if (x[i] !== y[i]) {
      expect.fail(`${label}: element ${i} is ${actual[i]} (0x${x[i].toString(16)}), reference ${expected[i]} (0x${y[i].toString(16)})`);
    }
  }
}

/** Runs kernels and the naive loop on copies of the same operands and compares. */
function check(
  kern: Kernels, tA: boolean, tB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c0: Float32Array, accumulate: boolean, label: string,
): void {
  const want = c0.slice();
  const got = c0.slice();
  naiveGemm(tA, tB, m, n, k, a, b, want, accumulate);
  kern.gemm(tA, tB, m, n, k, a, b, got, accumulate);
  expectBits(got, want, label);
}

describe.each([tsKernels, tsKernelsDense])('$name gemm', (kern) => {
  it('matches the naive chain on every form and awkward shape, accumulate on and off', () => {
    let seed = 1;
    for (const [tA, tB] of FORMS) {
      for (const m of SIZES) {
        for (const n of SIZES) {
          for (const k of [1, 2, 3, 5, 9, 17, 33]) {
            const a = fill(new Float32Array(m * k), seed++);
            const b = fill(new Float32Array(k * n), seed++);
            const c = fill(new Float32Array(m * n), seed++);
            for (const acc of [false, true]) {
              check(kern, tA, tB, m, n, k, a, b, c, acc, `${formName(tA, tB)} ${m}x${k}x${n} accumulate=${acc}`);
            }
          }
        }
      }
    }
  });

  it('matches on larger shapes (100, the model shapes)', () => {
    const shapes: [number, number, number][] = [[100, 100, 100], [64, 784, 128], [784, 64, 128], [64, 128, 784], [70, 128, 512], [13, 100, 10]];
    let seed = 1000;
    for (const [tA, tB] of FORMS) {
      for (const [m, k, n] of shapes) {
        const a = fill(new Float32Array(m * k), seed++);
        const b = fill(new Float32Array(k * n), seed++);
        const c = fill(new Float32Array(m * n), seed++);
        for (const acc of [false, true]) check(kern, tA, tB, m, n, k, a, b, c, acc, `${formName(tA, tB)} ${m}x${k}x${n} accumulate=${acc}`);
      }
    }
  });

  it('K = 0 gives zeros, or leaves C as it was when accumulating', () => {
    const c = fill(new Float32Array(5 * 6), 7);
    for (const [tA, tB] of FORMS) {
      for (const acc of [false, true]) check(kern, tA, tB, 5, 6, 0, new Float32Array(0), new Float32Array(0), c, acc, `${formName(tA, tB)} K=0 accumulate=${acc}`);
    }
  });

  it('row i of C does not depend on M (a micro-shard alone = the same rows of the whole batch)', () => {
    for (const [tA, tB] of FORMS) {
      const M = 37, K = 29, N = 23;
      const a = fill(new Float32Array(M * K), 51, 0.5);
      const b = fill(new Float32Array(K * N), 52);
      const c = fill(new Float32Array(M * N), 53);
      for (const acc of [false, true]) {
        const whole = c.slice();
        kern.gemm(tA, tB, M, N, K, a, b, whole, acc);
        // Rows [r0, r1) computed alone: slice A's rows (or A^T's columns) into a small problem.
        for (const [r0, r1] of [[0, 1], [1, 4], [3, 10], [5, 6], [30, 37], [9, 33]]) {
          const mm = r1 - r0;
          const sub = new Float32Array(mm * K);
          for (let i = 0; i < mm; i++) {
            for (let p = 0; p < K; p++) {
              if (tA) sub[p * mm + i] = a[p * M + r0 + i];
              else sub[i * K + p] = a[(r0 + i) * K + p];
            }
          }
          const part = c.slice(r0 * N, r1 * N);
          kern.gemm(tA, tB, mm, N, K, sub, b, part, acc);
          expectBits(part, whole.subarray(r0 * N, r1 * N), `${formName(tA, tB)} rows [${r0}, ${r1}) accumulate=${acc}`);
        }
      }
    }
  });
});

describe('skipping zeros of A', () => {
  /** A whose rows are mostly zero, with whole zero panels and zero columns (MNIST-like). */
  function sparse(m: number, k: number, tA: boolean, seed: number): Float32Array {
    const a = new Float32Array(m * k);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const on = uniform(seed, i, p) < 0.2 && p % 7 !== 3 && i % 5 !== 2;
        const v = on ? (uniform(seed, i, p + 100000) - 0.5) * 4 : (uniform(seed, i, p + 200000) < 0.5 ? 0 : -0);
        if (tA) a[p * m + i] = v;
        else a[i * k + p] = v;
      }
    }
    return a;
  }

  it('matches the naive chain with sparse A (zeros and -0), every form, accumulate on and off', () => {
    let seed = 300;
    for (const [tA, tB] of FORMS) {
      for (const [m, k, n] of [[64, 784, 16], [9, 33, 17], [784, 64, 12], [3, 50, 5], [4, 40, 4], [15, 60, 9], [18, 60, 7]] as [number, number, number][]) {
        const a = sparse(m, k, tA, seed++);
        const b = fill(new Float32Array(k * n), seed++);
        const c = fill(new Float32Array(m * n), seed++, 0);
        for (const acc of [false, true]) check(tsKernels, tA, tB, m, n, k, a, b, c, acc, `${formName(tA, tB)} ${m}x${k}x${n} accumulate=${acc}`);
      }
    }
  });

  it('an all-zero A gives +0 (accumulate off) and leaves C alone (on)', () => {
    for (const [tA, tB] of FORMS) {
      const a = new Float32Array(6 * 10).fill(-0);
      const b = fill(new Float32Array(10 * 7), 9);
      for (const acc of [false, true]) check(tsKernels, tA, tB, 6, 7, 10, a, b, fill(new Float32Array(42), 10, 0), acc, `${formName(tA, tB)} zero A accumulate=${acc}`);
    }
  });

  it('Inf or NaN in B turns it off: 0 * Inf = NaN reaches C as in the naive chain', () => {
    for (const [tA, tB] of FORMS) {
      for (const m of [8, 18]) { // 18: a ragged last row panel
        for (const bad of [Infinity, -Infinity, NaN]) {
          const k = 12, n = 8;
          const a = sparse(m, k, tA, 400);
          const b = fill(new Float32Array(k * n), 401);
          b[3 * (tB ? 1 : n) + 2 * (tB ? k : 1)] = bad; // op(B)[3, 2]: p = 3 is a zero column of A
          for (const acc of [false, true]) {
            const c = fill(new Float32Array(m * n), 402, 0);
            check(tsKernels, tA, tB, m, n, k, a, b, c, acc, `${formName(tA, tB)} m=${m} B holds ${bad} accumulate=${acc}`);
          }
        }
      }
    }
  });

  it('-0 in C (accumulating) turns it off: -0 + 0 = +0 as in the naive chain', () => {
    for (const [tA, tB] of FORMS) {
      for (const m of [8, 18]) { // 18: a ragged last row panel
        const k = 12, n = 8;
        const a = new Float32Array(m * k); // all +0: every term is +0 or -0
        const b = fill(new Float32Array(k * n), 500);
        const c = fill(new Float32Array(m * n), 501, 0);
        c[0] = -0; c[9] = -0; c[m * n - 1] = -0;
        check(tsKernels, tA, tB, m, n, k, a, b, c, true, `${formName(tA, tB)} m=${m} C holds -0`);
        const got = c.slice();
        tsKernels.gemm(tA, tB, m, n, k, a, b, got, true);
        // b has mixed signs, so some of those -0 must have become +0 (the naive chain agrees, see above).
        expect(Object.is(got[0], -0) && Object.is(got[9], -0) && Object.is(got[m * n - 1], -0)).toBe(false);
      }
    }
  });

  it('the result is the same whether or not zeros are skipped', () => {
    const m = 64, k = 784, n = 128;
    const a = sparse(m, k, false, 600);
    const b = fill(new Float32Array(k * n), 601);
    const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
    tsKernels.gemm(false, false, m, n, k, a, b, c1, false);
    tsKernelsDense.gemm(false, false, m, n, k, a, b, c2, false);
    expectBits(c1, c2, 'skipping vs dense');
  });
});
