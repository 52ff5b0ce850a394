// WebAssembly SIMD matrix product for dptrain (AssemblyScript, compiled by
// scripts/build-wasm.js with --enable simd -O3 --runtime stub).
//
// C (M, N) = [C +] op(A) op(B), row-major, the four transpose forms of the
// Kernels interface in src/tensor/kernels.ts. Letters: M rows of C, N columns
// of C, K the shared (reduction) dimension. All pointers are byte offsets
// into the imported memory; the JS loader owns the memory and the allocator.
//
// Structure (BLIS): for each block of NC columns of C and KC steps of k,
// B is packed into micro-panels of NR columns ((KC, NR), row-major); for
// each block of MC rows, A is packed into micro-panels of MR rows ((KC, MR),
// row-major). The micro-kernel keeps an MR x NR tile of C in v128 locals and
// walks k once. Packing absorbs the transposes, so one micro-kernel serves
// every form.
//
// NOTE (exactness): every lane of every accumulator does, for k = 0..K-1 in
// increasing order, c = f32(c + f32(a * b)) with f32x4.mul then f32x4.add,
// never a fused multiply-add and never a reordering (no unrolling over k into
// separate partial sums). K blocks are walked in increasing order and the
// partial sum is carried through C itself (a float32), so the chain per
// element is exactly the one of tsKernels, whatever M, the blocking or the
// tile position. A non-accumulating product starts from +0 and adds, as
// tsKernels does after c.fill(0): that keeps -0 products bit-identical too.

import { transpose4Store } from './simd';

// Register tile: MR rows x NR columns = 5 x 8 floats = 10 v128 accumulators,
// 2 B vectors, 1 broadcast A value and 1 product: 14 of the 15 xmm registers
// V8 allocates on x64. Measured here: 5x8 ran 15-25% faster than 4x8 or 2x16
// (less loop overhead per multiply-add); 6x8 spilled and fell to ~20 GFLOP/s.
const MR: i32 = 5;
const NR: i32 = 8;
// Cache blocking, in floats (upper bounds; the loops split M, N and K into
// equal blocks no larger than these). A micro-panel of B (KC x NR x 4 bytes =
// 8 KiB) stays in L1 while a block of A (MC x KC, ~128 KiB) stays in L2.
const MC: i32 = 130;
const KC: i32 = 256;
const NC: i32 = 512;
// Packing walks the source PCH rows of k at a time, so every cache line it
// reads is used up while still in L1 (a column walk with a power-of-two
// stride would otherwise evict its own lines).
const PCH: i32 = 16;

// Workspace, set once by the loader (byte offsets).
let packA: usize = 0; // (MC + 4, KC) as row panels of (KC, 5) and (KC, 4)
let packB: usize = 0; // (KC, NC) as micro-panels of (KC, NR)
let tile: usize = 0; // (MR, NR) scratch for partial tiles at the edges of C

/** First free byte after the module's own static data. */
export function heapBase(): usize {
  return __heap_base;
}

/** Bytes of workspace gemm needs (packing buffers and an edge tile). */
export function workspaceBytes(): i32 {
  return ((MC + 4) * KC + KC * NC + MR * NR) * 4;
}

/** Hands the module its workspace: workspaceBytes() bytes at ptr, 16-byte aligned. */
export function setWorkspace(ptr: usize): void {
  packA = ptr;
  packB = ptr + <usize>((MC + 4) * KC * 4);
  tile = packB + <usize>(KC * NC * 4);
}

/** Splits total into equal blocks of at most max, each a multiple of unit (784 -> 4 x 196, not 3 x 256 + 16). */
@inline
function blockStep(total: i32, max: i32, unit: i32): i32 {
  const blocks = (total + max - 1) / max;
  const step = (total + blocks - 1) / blocks;
  return (step + unit - 1) / unit * unit;
}

// ---------------------------------------------------------------- packing

// Row panels of an (mc, kc) block of A. Full panels of MR = 5 rows come
// first, then panels of 4 rows, chosen so that no row is wasted when that is
// possible (every mc >= 12 is 5a + 4b; 16 = 4 x 4, 32 = 4 x 5 + 3 x 4);
// otherwise (mc in 1..3, 6, 7, 11) the last 4-row panel is partial, padded
// with zero rows. Returns the number of rows in 5-row panels.
@inline
function rowsIn5(mc: i32): i32 {
  const fours = (MR - mc % MR) % MR;
  return fours * 4 <= mc ? mc - fours * 4 : mc / MR * MR;
}

// Packs op(A)[i0 .. i0+rows, pc+p0 .. pc+p1] into the panel of height h
// (rows <= h) at dst, which holds (kc, h) row-major: h consecutive floats per
// p. op(A)(i, p) is a[i*k + p] (stored (M, K)) or, with transA, a[p*m + i]
// (stored (K, M)). Rows past `rows` are zero.
function packPanelA(transA: bool, a: usize, m: i32, k: i32, i0: i32, pc: i32, p0: i32, p1: i32,
  h: i32, rows: i32, dst: usize): void {
  const hb = <usize>(h * 4); // bytes per p in the panel
  if (rows < h) {
    for (let p = p0; p < p1; p++) {
      const d = dst + <usize>p * hb;
      const q = <usize>(pc + p);
      for (let r = 0; r < h; r++) {
        let v: f32 = 0;
        if (r < rows) {
          const i = <usize>(i0 + r);
          v = transA ? load<f32>(a + (q * <usize>m + i) * 4) : load<f32>(a + (i * <usize>k + q) * 4);
        }
        store<f32>(d + <usize>(r * 4), v);
      }
    }
  } else if (transA) {
    // Row p of the stored A holds the panel's i side by side: 4 (+ 1) floats.
    const ld = <usize>m * 4;
    let src = a + (<usize>(pc + p0) * <usize>m + <usize>i0) * 4;
    for (let p = p0; p < p1; p++) {
      const d = dst + <usize>p * hb;
      v128.store(d, v128.load(src));
      if (h == 5) store<f32>(d, load<f32>(src, 16), 16);
      src += ld;
    }
  } else {
    // h rows of the stored A walked along k together: four of them through
    // a 4x4 transpose, the fifth (h = 5) one float at a time. The vector
    // stores at stride 20 leave bytes 16..19 of each p to the fifth row.
    const ld = <usize>k * 4;
    const s0 = a + (<usize>i0 * <usize>k + <usize>pc) * 4;
    const s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld, s4 = s3 + ld;
    let p = p0;
    for (; p + 4 <= p1; p += 4) {
      const o = <usize>(p * 4);
      const d = dst + <usize>p * hb;
      transpose4Store(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o), d, hb);
      if (h == 5) {
        store<f32>(d, load<f32>(s4 + o), 16);
        store<f32>(d, load<f32>(s4 + o, 4), 36);
        store<f32>(d, load<f32>(s4 + o, 8), 56);
        store<f32>(d, load<f32>(s4 + o, 12), 76);
      }
    }
    for (; p < p1; p++) {
      const o = <usize>(p * 4);
      const d = dst + <usize>p * hb;
      store<f32>(d, load<f32>(s0 + o), 0);
      store<f32>(d, load<f32>(s1 + o), 4);
      store<f32>(d, load<f32>(s2 + o), 8);
      store<f32>(d, load<f32>(s3 + o), 12);
      if (h == 5) store<f32>(d, load<f32>(s4 + o), 16);
    }
  }
}

// Packs op(A)[ic .. ic+mc, pc .. pc+kc] into packA, panel by panel (see
// rowsIn5); the panel holding row ir starts at packA + ir * kc floats.
function packBlockA(transA: bool, a: usize, m: i32, k: i32, ic: i32, pc: i32, mc: i32, kc: i32): void {
  const r5 = rowsIn5(mc);
  for (let p0 = 0; p0 < kc; p0 += PCH) {
    const p1 = min(kc, p0 + PCH);
    for (let ir = 0; ir < mc; ) {
      const h = ir < r5 ? MR : 4;
      packPanelA(transA, a, m, k, ic + ir, pc, p0, p1, h, min(h, mc - ir), packA + <usize>(ir * kc * 4));
      ir += h;
    }
  }
}

// Packs op(B)[pc .. pc+kc, jc .. jc+nc] at dstB (packB, or a caller's
// buffer for packBWhole): micro-panel jr holds (kc, NR) row-major. op(B)(p, j) is b[p*n + j] (stored (K, N)) or, with
// transB, b[j*k + p] (stored (N, K)). Columns past nc in the last
// micro-panel are zero.
function packBlockB(transB: bool, b: usize, n: i32, k: i32, pc: i32, jc: i32, kc: i32, nc: i32, dstB: usize): void {
  const full = nc / NR * NR; // columns in full micro-panels
  if (transB) {
    // NR rows of the stored B, walked along k together, through two 4x4 transposes.
    const ld = <usize>k * 4;
    for (let jr = 0; jr < full; jr += NR) {
      const dst = dstB + <usize>(jr * kc * 4);
      const s0 = b + (<usize>(jc + jr) * <usize>k + <usize>pc) * 4;
      const s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
      const s4 = s3 + ld, s5 = s4 + ld, s6 = s5 + ld, s7 = s6 + ld;
      let p = 0;
      for (; p + 4 <= kc; p += 4) {
        const o = <usize>(p * 4);
        const d = dst + <usize>(p * NR * 4);
        transpose4Store(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o), d, NR * 4);
        transpose4Store(v128.load(s4 + o), v128.load(s5 + o), v128.load(s6 + o), v128.load(s7 + o), d + 16, NR * 4);
      }
      for (; p < kc; p++) {
        const o = <usize>(p * 4);
        const d = dst + <usize>(p * NR * 4);
        store<f32>(d, load<f32>(s0 + o), 0);
        store<f32>(d, load<f32>(s1 + o), 4);
        store<f32>(d, load<f32>(s2 + o), 8);
        store<f32>(d, load<f32>(s3 + o), 12);
        store<f32>(d, load<f32>(s4 + o), 16);
        store<f32>(d, load<f32>(s5 + o), 20);
        store<f32>(d, load<f32>(s6 + o), 24);
        store<f32>(d, load<f32>(s7 + o), 28);
      }
    }
  } else {
    // Row p of the stored B holds the j's side by side: two vectors per panel.
    const ld = <usize>n * 4;
    for (let p0 = 0; p0 < kc; p0 += PCH) {
      const p1 = min(kc, p0 + PCH);
      for (let jr = 0; jr < full; jr += NR) {
        const dst = dstB + <usize>(jr * kc * 4);
        let src = b + (<usize>(pc + p0) * <usize>n + <usize>(jc + jr)) * 4;
        for (let p = p0; p < p1; p++) {
          const d = dst + <usize>(p * NR * 4);
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          src += ld;
        }
      }
    }
  }
  if (full < nc) {
    const cols = nc - full;
    const dst = dstB + <usize>(full * kc * 4);
    for (let p = 0; p < kc; p++) {
      const d = dst + <usize>(p * NR * 4);
      const q = <usize>(pc + p);
      for (let c = 0; c < NR; c++) {
        let v: f32 = 0;
        if (c < cols) {
          const j = <usize>(jc + full + c);
          v = transB ? load<f32>(b + (j * <usize>k + q) * 4) : load<f32>(b + (q * <usize>n + j) * 4);
        }
        store<f32>(d + <usize>(c * 4), v);
      }
    }
  }
}

// ---------------------------------------------------------------- micro-kernel

// C tile (MR, NR) at c (row stride ldc bytes) [+]= Apanel (kc, MR)^T Bpanel (kc, NR).
// With fromC the tile starts from C's values, else from +0.
// NOTE: one k step per iteration, mul then add, in k order; unrolling over k
// measured slower and must never split the sum into partial chains.
function kernel5x8(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, fromC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  let c40 = f32x4.splat(0), c41 = f32x4.splat(0);
  const r1 = c + ldc, r2 = r1 + ldc, r3 = r2 + ldc, r4 = r3 + ldc;
  if (fromC) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(r1); c11 = v128.load(r1, 16);
    c20 = v128.load(r2); c21 = v128.load(r2, 16);
    c30 = v128.load(r3); c31 = v128.load(r3, 16);
    c40 = v128.load(r4); c41 = v128.load(r4, 16);
  }
  const end = bp + <usize>(kc * NR * 4);
  while (bp < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let x = v128.load32_splat(ap);
    c00 = f32x4.add(c00, f32x4.mul(x, b0));
    c01 = f32x4.add(c01, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(x, b0));
    c11 = f32x4.add(c11, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(x, b0));
    c21 = f32x4.add(c21, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(x, b0));
    c31 = f32x4.add(c31, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 16);
    c40 = f32x4.add(c40, f32x4.mul(x, b0));
    c41 = f32x4.add(c41, f32x4.mul(x, b1));
    ap += MR * 4;
    bp += NR * 4;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
  v128.store(r4, c40); v128.store(r4, c41, 16);
}

// The same for a 4-row panel (Apanel (kc, 4)).
function kernel4x8(kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, fromC: bool): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  const r1 = c + ldc, r2 = r1 + ldc, r3 = r2 + ldc;
  if (fromC) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    c10 = v128.load(r1); c11 = v128.load(r1, 16);
    c20 = v128.load(r2); c21 = v128.load(r2, 16);
    c30 = v128.load(r3); c31 = v128.load(r3, 16);
  }
  const end = bp + <usize>(kc * NR * 4);
  while (bp < end) {
    const b0 = v128.load(bp);
    const b1 = v128.load(bp, 16);
    let x = v128.load32_splat(ap);
    c00 = f32x4.add(c00, f32x4.mul(x, b0));
    c01 = f32x4.add(c01, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 4);
    c10 = f32x4.add(c10, f32x4.mul(x, b0));
    c11 = f32x4.add(c11, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 8);
    c20 = f32x4.add(c20, f32x4.mul(x, b0));
    c21 = f32x4.add(c21, f32x4.mul(x, b1));
    x = v128.load32_splat(ap, 12);
    c30 = f32x4.add(c30, f32x4.mul(x, b0));
    c31 = f32x4.add(c31, f32x4.mul(x, b1));
    ap += 16;
    bp += NR * 4;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

// Tile of h = 5 or 4 rows (see rowsIn5).
@inline
function kernel(h: i32, kc: i32, ap: usize, bp: usize, c: usize, ldc: usize, fromC: bool): void {
  if (h == MR) kernel5x8(kc, ap, bp, c, ldc, fromC);
  else kernel4x8(kc, ap, bp, c, ldc, fromC);
}

// The (mc, nc) block of C at c (row stride ldc bytes) from packA and the
// packed B block at pb. B micro-panel outside (it stays in L1), A panels
// inside (from L2).
function macroKernel(mc: i32, nc: i32, kc: i32, pb: usize, c: usize, ldc: usize, fromC: bool): void {
  const r5 = rowsIn5(mc);
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const bp = pb + <usize>(jr * kc * 4);
    for (let ir = 0; ir < mc; ) {
      const h = ir < r5 ? MR : 4;
      const rows = min(h, mc - ir);
      const ap = packA + <usize>(ir * kc * 4);
      const ct = c + <usize>ir * ldc + <usize>(jr * 4);
      if (rows == h && cols == NR) {
        kernel(h, kc, ap, bp, ct, ldc, fromC);
      } else {
        // Edge tile: run the full kernel on a scratch tile, copy the valid part.
        // (The padding rows and columns are zero in the packs; their results are dropped.)
        if (fromC) {
          for (let r = 0; r < rows; r++) {
            for (let q = 0; q < cols; q++) {
              store<f32>(tile + <usize>((r * NR + q) * 4), load<f32>(ct + <usize>r * ldc + <usize>(q * 4)));
            }
          }
        }
        kernel(h, kc, ap, bp, tile, NR * 4, fromC);
        for (let r = 0; r < rows; r++) {
          for (let q = 0; q < cols; q++) {
            store<f32>(ct + <usize>r * ldc + <usize>(q * 4), load<f32>(tile + <usize>((r * NR + q) * 4)));
          }
        }
      }
      ir += h;
    }
  }
}

// ---------------------------------------------------------------- entry

/**
 * C (m, n) = [C +] op(A) op(B). transA: A stored (k, m), else (m, k).
 * transB: B stored (n, k), else (k, n). a, b, c: byte offsets of the
 * row-major arrays. accumulate != 0 adds to C, else C is overwritten.
 * C must not overlap A or B.
 */
export function gemm(transA: i32, transB: i32, m: i32, n: i32, k: i32, a: usize, b: usize, c: usize, accumulate: i32): void {
  gemmBlocked(transA, transB, m, n, k, a, b, 0, c, accumulate);
}

// ---------------------------------------------------------------- B packed once, used many times

// A recurrent layer multiplies by the same weight matrix at every timestep,
// with few rows (one micro-shard) each time; packing B dominated those
// products. packBWhole packs every block of op(B) once, in the order and
// blocking that gemm uses (they depend on n and k only, never on m), and
// gemmPackedB reads the blocks from there: the same arithmetic in the same
// order, so its results are bit-identical to gemm's.

/** Floats that packBWhole writes for an op(B) of (k, n). */
export function packedBFloats(n: i32, k: i32): i32 {
  if (n <= 0 || k <= 0) return 0;
  const nStep = blockStep(n, NC, NR);
  let total = 0;
  for (let jc = 0; jc < n; jc += nStep) {
    const nc = min(nStep, n - jc);
    total += k * ((nc + NR - 1) / NR * NR);
  }
  return total;
}

/** Packs all of op(B) (k, n) at dst (packedBFloats(n, k) floats, 16-byte aligned). */
export function packBWhole(transB: i32, n: i32, k: i32, b: usize, dst: usize): void {
  if (n <= 0 || k <= 0) return;
  const kStep = blockStep(k, KC, 1);
  const nStep = blockStep(n, NC, NR);
  let pb = dst;
  for (let jc = 0; jc < n; jc += nStep) {
    const nc = min(nStep, n - jc);
    const ncPad = (nc + NR - 1) / NR * NR;
    for (let pc = 0; pc < k; pc += kStep) {
      const kc = min(kStep, k - pc);
      packBlockB(transB != 0, b, n, k, pc, jc, kc, nc, pb);
      pb += <usize>(kc * ncPad * 4);
    }
  }
}

/** gemm with op(B) already packed by packBWhole(transB, n, k, b, packed): bit-identical results. */
export function gemmPackedB(transA: i32, m: i32, n: i32, k: i32, a: usize, packed: usize, c: usize, accumulate: i32): void {
  gemmBlocked(transA, 0, m, n, k, a, 0, packed, c, accumulate);
}

// The loops of gemm. With packed != 0, B's blocks are read from there (in
// packBWhole's order) instead of being packed into packB here.
function gemmBlocked(transA: i32, transB: i32, m: i32, n: i32, k: i32, a: usize, b: usize, packed: usize,
  c: usize, accumulate: i32): void {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>m * <usize>n * 4);
    return;
  }
  const kStep = blockStep(k, KC, 1);
  const mStep = blockStep(m, MC, MR);
  const nStep = blockStep(n, NC, NR);
  const ldc = <usize>n * 4;
  let pb = packed;
  for (let jc = 0; jc < n; jc += nStep) {
    const nc = min(nStep, n - jc);
    const ncPad = (nc + NR - 1) / NR * NR;
    // K blocks in increasing order: the partial sums go through C in k order.
    for (let pc = 0; pc < k; pc += kStep) {
      const kc = min(kStep, k - pc);
      let bBlock = packB;
      if (packed != 0) {
        bBlock = pb;
        pb += <usize>(kc * ncPad * 4);
      } else {
        packBlockB(transB != 0, b, n, k, pc, jc, kc, nc, packB);
      }
      const fromC = accumulate != 0 || pc > 0;
      for (let ic = 0; ic < m; ic += mStep) {
        const mc = min(mStep, m - ic);
        packBlockA(transA != 0, a, m, k, ic, pc, mc, kc);
        macroKernel(mc, nc, kc, bBlock, c + <usize>ic * ldc + <usize>(jc * 4), ldc, fromC);
      }
    }
  }
}
