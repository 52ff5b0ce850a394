// The one small interface behind which every hot loop of the core lives.
// The pure-TypeScript implementation below is the reference; a WebAssembly
// SIMD implementation can be swapped in with setKernels() without touching
// any layer.
//
// Exactness contract (docs/design.md principle 3, issue 3): for every form, row i
// of C is a fixed chain of float32-rounded multiply-adds over k in increasing
// order. It does not depend on M, on blocking, or on which rows share a call,
// so a micro-shard computes the same bits alone or inside a larger batch.

export interface Kernels {
  readonly name: string;
  /**
   * C (M, N) = [C +] op(A) op(B), op(A) (M, K), op(B) (K, N), all row-major.
   * transA: A is stored (K, M). transB: B is stored (N, K).
   * With accumulate the products are added to C, else C is overwritten.
   */
  gemm(
    transA: boolean, transB: boolean,
    m: number, n: number, k: number,
    a: Float32Array, b: Float32Array, c: Float32Array,
    accumulate: boolean,
  ): void;
}

// NOTE: accumulations go through Math.fround so that every partial sum is a
// float32, the same arithmetic a float32 SIMD kernel does. A float64 running
// sum would be more accurate but would make the TS and WASM results differ.
const f = Math.fround;

// ---------------------------------------------------------------- how the TS gemm is fast
//
// The limit. V8 does float32 arithmetic in float64: every fround is a
// conversion pair (cvtsd2ss + cvtss2sd), so a multiply-add of the contract
// costs 4 conversions besides the multiply and the add, and every load from a
// Float32Array one more. Those conversions bound any scalar JS kernel: about
// 2.5 GFLOP/s on one core of the machine of docs/design.md, whatever the loop
// order or tile shape (measured: 4x4, 4x8, 8x4, 2x8, 1x8 tiles alike). The
// i-k-j loop this replaces (C updated in memory at every p: a load, a
// conversion and a store per term) was already close: 2.0-2.4 in a warm
// benchmark (bench/gemm.ts), where the tiles gain 5-25%, and 8-40% inside
// an LSTM training step, the more the busier the machine (the loads and
// stores of C suffer most from a shared core). What it does:
//
// 1. Register tiles. C is cut into 4x4 tiles; a tile's 16 sums live in local
//    variables for the whole k loop, which per p loads 4 values of op(A) and
//    4 of op(B) and does 16 multiply-adds.
// 2. A in float64. Each 4-row panel of op(A) is copied (exactly: a float32 is
//    a float64) into a small Float64Array, interleaved by p, so the A side
//    of the k loop is one contiguous stream with no conversions. The copy
//    also makes the four forms one kernel (op(B) is read in place through
//    its strides) and pads a ragged last panel by repeating row M-1 (its
//    extra sums are dropped). NOTE: copying op(B) into float64 panels too
//    looked 17% faster in a warm microbenchmark but made training steps
//    30-40% SLOWER (the panels are twice the bytes of B and stream from
//    cache at every use); don't.
// 3. Skipping zeros of A, exactly (below).
//
// Each C element is still its own chain over p in increasing order,
// c = fround(c + fround(a*b)), from C's value (accumulate) or +0: tiling,
// copying and padding change the speed and not one bit, and row i's chain
// never looks at another row, so it does not depend on M.
//
// Skipping zeros of A. Where every row of a panel has op(A)[i, p] = +-0, each
// of their terms at p is fround(+-0 * b) = +-0 if b is finite, and
// c + (+-0) = c for every c except c = -0 (-0 + +0 = +0). Such a p is left
// out of the panel's k loop without changing a bit, provided
//   (1) every value of op(B) is finite (0 * Inf and 0 * NaN are NaN), and
//   (2) no sum starts at -0: sums start at +0 (accumulate off) or at C's
//       values, which are then checked for -0. A chain that starts anywhere
//       but at -0 never reaches -0 (x + y = -0 in round-to-nearest only when
//       both are -0), so checking the start is enough.
// (1) is checked once per call, when a first panel has a p to skip, (2) on
// the rows of C of each panel that skips; where either fails nothing is
// skipped. MNIST pixels are 81% zeros: for the
// first dense layer's x W and x^T dy this skips 60-70% of the work (4 rows
// share fewer zeros than one); dense operands (hidden states, gate
// gradients) only pay the scan of A that the copy does anyway.
// tsKernelsDense below never skips (same bits; for speed comparisons).

/** Scratch reused from call to call (one call at a time per thread), grown to the largest K seen. */
let aPack = new Float64Array(0);  // one 4-row panel of op(A), listed p only: [q*4 + r] = op(A)[i + r, pList[q]]
let pList = new Int32Array(0);    // the p of aPack, increasing
const tileBuf = new Float32Array(16); // a ragged edge tile of C (row stride 4)
/** +0 as a float32 load: starting the sums from it (not from the literal 0) keeps them unboxed in V8. */
const ZERO = new Float32Array(1);

/** True if the first `len` values of b are all finite. */
function allFinite(b: Float32Array, len: number): boolean {
  let nonFinite = 0; // v * 0 is 0 for a finite v, NaN for Inf and NaN
  for (let x = 0; x < len; x++) nonFinite += b[x] * 0;
  return nonFinite === 0;
}

/** True if c[from, from + len) holds a -0. */
function hasNegativeZero(c: Float32Array, from: number, len: number): boolean {
  for (let x = from; x < from + len; x++) {
    if (c[x] === 0 && 1 / c[x] < 0) return true;
  }
  return false;
}

/**
 * Copies rows i..i+3 of op(A) (rows past M repeat row M-1) into aPack and
 * their p into pList: every p, or with `skip` only the p where some of the
 * rows is nonzero. Returns the count.
 */
function packA4(a: Float32Array, ai: number, ap: number, m: number, k: number, i: number, skip: boolean): number {
  if (aPack.length < k * 4) { aPack = new Float64Array(k * 4); pList = new Int32Array(k); }
  const out = aPack, idx = pList;
  const o0 = i * ai;
  const o1 = Math.min(i + 1, m - 1) * ai, o2 = Math.min(i + 2, m - 1) * ai, o3 = Math.min(i + 3, m - 1) * ai;
  let cnt = 0;
  for (let p = 0, pa = 0; p < k; p++, pa += ap) {
    const x0 = a[pa + o0], x1 = a[pa + o1], x2 = a[pa + o2], x3 = a[pa + o3];
    if (!skip || x0 !== 0 || x1 !== 0 || x2 !== 0 || x3 !== 0) {
      const o = cnt * 4;
      out[o] = x0; out[o + 1] = x1; out[o + 2] = x2; out[o + 3] = x3;
      idx[cnt++] = p;
    }
  }
  return cnt;
}

/**
 * One 4x4 tile: C[o + r*ldc + q] (r, q < 4) [+]= the sum over the listed p
 * of aPack's row r times op(B)[p, column q] = b[p*bp + bq].
 */
function tile4x4(
  ap: Float64Array, idx: Int32Array, cnt: number,
  b: Float32Array, bp: number, b0: number, b1: number, b2: number, b3: number,
  c: Float32Array, o: number, ldc: number, accumulate: boolean,
): void {
  const c0 = o, c1 = o + ldc, c2 = c1 + ldc, c3 = c2 + ldc;
  const z = ZERO[0];
  let s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z;
  let s20 = z, s21 = z, s22 = z, s23 = z, s30 = z, s31 = z, s32 = z, s33 = z;
  if (accumulate) {
    s00 = c[c0]; s01 = c[c0 + 1]; s02 = c[c0 + 2]; s03 = c[c0 + 3];
    s10 = c[c1]; s11 = c[c1 + 1]; s12 = c[c1 + 2]; s13 = c[c1 + 3];
    s20 = c[c2]; s21 = c[c2 + 1]; s22 = c[c2 + 2]; s23 = c[c2 + 3];
    s30 = c[c3]; s31 = c[c3 + 1]; s32 = c[c3 + 2]; s33 = c[c3 + 3];
  }
  for (let q = 0, oa = 0; q < cnt; q++, oa += 4) {
    const ob = idx[q] * bp;
    const y0 = b[ob + b0], y1 = b[ob + b1], y2 = b[ob + b2], y3 = b[ob + b3];
    let x = ap[oa];
    s00 = f(s00 + f(x * y0)); s01 = f(s01 + f(x * y1)); s02 = f(s02 + f(x * y2)); s03 = f(s03 + f(x * y3));
    x = ap[oa + 1];
    s10 = f(s10 + f(x * y0)); s11 = f(s11 + f(x * y1)); s12 = f(s12 + f(x * y2)); s13 = f(s13 + f(x * y3));
    x = ap[oa + 2];
    s20 = f(s20 + f(x * y0)); s21 = f(s21 + f(x * y1)); s22 = f(s22 + f(x * y2)); s23 = f(s23 + f(x * y3));
    x = ap[oa + 3];
    s30 = f(s30 + f(x * y0)); s31 = f(s31 + f(x * y1)); s32 = f(s32 + f(x * y2)); s33 = f(s33 + f(x * y3));
  }
  c[c0] = s00; c[c0 + 1] = s01; c[c0 + 2] = s02; c[c0 + 3] = s03;
  c[c1] = s10; c[c1 + 1] = s11; c[c1 + 2] = s12; c[c1 + 3] = s13;
  c[c2] = s20; c[c2 + 1] = s21; c[c2 + 2] = s22; c[c2 + 3] = s23;
  c[c3] = s30; c[c3 + 1] = s31; c[c3 + 2] = s32; c[c3 + 3] = s33;
}

/**
 * C (M, N) [+]= op(A) op(B) through strides: op(A)[i, p] = a[i*ai + p*ap],
 * op(B)[p, j] = b[p*bp + j*bj].
 */
function gemmStrided(
  m: number, n: number, k: number,
  a: Float32Array, ai: number, ap: number,
  b: Float32Array, bp: number, bj: number,
  c: Float32Array, accumulate: boolean, skipZeros: boolean,
): void {
  if (m === 0 || n === 0) return;
  // finite: is op(B) free of Inf and NaN? 0 not yet known (checked when first needed), 1 yes, -1 no.
  let finite = 0;
  for (let i = 0; i < m; i += 4) {
    const rows = Math.min(4, m - i);
    let cnt = packA4(a, ai, ap, m, k, i, skipZeros && finite >= 0);
    if (cnt < k) {
      // This panel skips some p: conditions (1), once per call, and (2), on the panel's rows of C.
      if (finite === 0) finite = allFinite(b, k * n) ? 1 : -1;
      if (finite < 0 || (accumulate && hasNegativeZero(c, i * n, rows * n))) cnt = packA4(a, ai, ap, m, k, i, false);
    }
    for (let j = 0; j < n; j += 4) {
      const cols = Math.min(4, n - j);
      // Columns past N repeat column N-1 (their sums are dropped).
      const b0 = j * bj, b1 = Math.min(j + 1, n - 1) * bj, b2 = Math.min(j + 2, n - 1) * bj, b3 = Math.min(j + 3, n - 1) * bj;
      if (rows === 4 && cols === 4) {
        tile4x4(aPack, pList, cnt, b, bp, b0, b1, b2, b3, c, i * n + j, n, accumulate);
      } else {
        // A ragged edge tile goes through tileBuf.
        if (accumulate) for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) tileBuf[r * 4 + q] = c[(i + r) * n + j + q];
        tile4x4(aPack, pList, cnt, b, bp, b0, b1, b2, b3, tileBuf, 0, 4, accumulate);
        for (let r = 0; r < rows; r++) for (let q = 0; q < cols; q++) c[(i + r) * n + j + q] = tileBuf[r * 4 + q];
      }
    }
  }
}

/** Strides of the four forms, then the kernel. */
function gemmTs(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean, skipZeros: boolean,
): void {
  // op(A) (M, K): stored (M, K) -> [i*K + p]; transA: stored (K, M) -> [p*M + i].
  // op(B) (K, N): stored (K, N) -> [p*N + j]; transB: stored (N, K) -> [j*K + p].
  gemmStrided(
    m, n, k,
    a, transA ? 1 : k, transA ? m : 1,
    b, transB ? 1 : n, transB ? k : 1,
    c, accumulate, skipZeros,
  );
}

export const tsKernels: Kernels = {
  name: 'typescript',
  gemm(transA, transB, m, n, k, a, b, c, accumulate) {
    gemmTs(transA, transB, m, n, k, a, b, c, accumulate, true);
  },
};

/** The same kernels without the skipping of zeros (same bits, for speed comparisons). */
export const tsKernelsDense: Kernels = {
  name: 'typescript-dense',
  gemm(transA, transB, m, n, k, a, b, c, accumulate) {
    gemmTs(transA, transB, m, n, k, a, b, c, accumulate, false);
  },
};

let active: Kernels = tsKernels;

/** The kernels every layer calls. */
export function kernels(): Kernels {
  return active;
}

/** Swap the implementation (the WebAssembly SIMD one, or back to the reference). */
export function setKernels(k: Kernels): void {
  active = k;
}

/** Shorthand used by the layers. */
export function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
): void {
  active.gemm(transA, transB, m, n, k, a, b, c, accumulate);
}
