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

// Register tile: MR rows x NR columns = 4 x 8 floats = 8 v128 accumulators,
// 2 B vectors and 1 broadcast A value (V8 on x64 has 16 xmm registers; tiles
// needing more spilled and ran slower).
const MR: i32 = 4;
const NR: i32 = 8;
// Cache blocking, in floats. A micro-panel of B (KC x NR x 4 bytes = 8 KiB)
// stays in L1 while a block of A (MC x KC) streams from L2.
const MC: i32 = 128;
const KC: i32 = 256;
const NC: i32 = 1024;

// Workspace, set once by the loader (byte offsets, 64-byte aligned).
let packA: usize = 0; // (MC, KC) as MC/MR micro-panels of (KC, MR)
let packB: usize = 0; // (KC, NC) as NC/NR micro-panels of (KC, NR)
let tile: usize = 0; // (MR, NR) scratch for partial tiles at the edges of C

/** First free byte after the module's own static data. */
export function heapBase(): usize {
  return __heap_base;
}

/** Bytes of workspace gemm needs (packing buffers and an edge tile). */
export function workspaceBytes(): i32 {
  return (MC * KC + KC * NC + MR * NR) * 4;
}

/** Hands the module its workspace: workspaceBytes() bytes at ptr, 16-byte aligned. */
export function setWorkspace(ptr: usize): void {
  packA = ptr;
  packB = ptr + <usize>(MC * KC * 4);
  tile = packB + <usize>(KC * NC * 4);
}

// ---------------------------------------------------------------- packing

// 4x4 transpose of rows r0..r3 into columns, stored at dst, dst+stride, ...
// Output q holds (r0[q], r1[q], r2[q], r3[q]).
@inline
function transpose4Store(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
}

// Packs op(A)[ic .. ic+mc, pc .. pc+kc] into packA. op(A)(i, p) is
// a[i*k + p] (stored (M, K)) or, with transA, a[p*m + i] (stored (K, M)).
// Rows past mc in the last micro-panel are zero.
function packBlockA(transA: bool, a: usize, m: i32, k: i32, ic: i32, pc: i32, mc: i32, kc: i32): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const dst = packA + <usize>(ir * kc * 4); // (kc, MR)
    const i0 = ic + ir;
    if (rows == MR) {
      if (transA) {
        // Four consecutive i at each p: one vector load.
        let src = a + (<usize>pc * <usize>m + <usize>i0) * 4;
        const ld = <usize>m * 4;
        for (let p = 0; p < kc; p++) {
          v128.store(dst + <usize>(p * 16), v128.load(src));
          src += ld;
        }
      } else {
        const ld = <usize>k * 4;
        const s0 = a + (<usize>i0 * <usize>k + <usize>pc) * 4;
        const s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>(p * 4);
          transpose4Store(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o),
            dst + <usize>(p * 16), 16);
        }
        for (; p < kc; p++) {
          const o = <usize>(p * 4);
          const d = dst + <usize>(p * 16);
          store<f32>(d, load<f32>(s0 + o), 0);
          store<f32>(d, load<f32>(s1 + o), 4);
          store<f32>(d, load<f32>(s2 + o), 8);
          store<f32>(d, load<f32>(s3 + o), 12);
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const d = dst + <usize>(p * 16);
        for (let r = 0; r < MR; r++) {
          let v: f32 = 0;
          if (r < rows) {
            const i = <usize>(i0 + r), q = <usize>(pc + p);
            v = transA ? load<f32>(a + (q * <usize>m + i) * 4) : load<f32>(a + (i * <usize>k + q) * 4);
          }
          store<f32>(d + <usize>(r * 4), v);
        }
      }
    }
  }
}

// Packs op(B)[pc .. pc+kc, jc .. jc+nc] into packB. op(B)(p, j) is
// b[p*n + j] (stored (K, N)) or, with transB, b[j*k + p] (stored (N, K)).
// Columns past nc in the last micro-panel are zero.
function packBlockB(transB: bool, b: usize, n: i32, k: i32, pc: i32, jc: i32, kc: i32, nc: i32): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const dst = packB + <usize>(jr * kc * 4); // (kc, NR)
    const j0 = jc + jr;
    if (cols == NR) {
      if (transB) {
        const ld = <usize>k * 4;
        const s0 = b + (<usize>j0 * <usize>k + <usize>pc) * 4;
        const s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld;
        const s4 = s3 + ld, s5 = s4 + ld, s6 = s5 + ld, s7 = s6 + ld;
        let p = 0;
        for (; p + 4 <= kc; p += 4) {
          const o = <usize>(p * 4);
          const d = dst + <usize>(p * 32);
          transpose4Store(v128.load(s0 + o), v128.load(s1 + o), v128.load(s2 + o), v128.load(s3 + o), d, 32);
          transpose4Store(v128.load(s4 + o), v128.load(s5 + o), v128.load(s6 + o), v128.load(s7 + o), d + 16, 32);
        }
        for (; p < kc; p++) {
          const o = <usize>(p * 4);
          const d = dst + <usize>(p * 32);
          store<f32>(d, load<f32>(s0 + o), 0);
          store<f32>(d, load<f32>(s1 + o), 4);
          store<f32>(d, load<f32>(s2 + o), 8);
          store<f32>(d, load<f32>(s3 + o), 12);
          store<f32>(d, load<f32>(s4 + o), 16);
          store<f32>(d, load<f32>(s5 + o), 20);
          store<f32>(d, load<f32>(s6 + o), 24);
          store<f32>(d, load<f32>(s7 + o), 28);
        }
      } else {
        let src = b + (<usize>pc * <usize>n + <usize>j0) * 4;
        const ld = <usize>n * 4;
        for (let p = 0; p < kc; p++) {
          const d = dst + <usize>(p * 32);
          v128.store(d, v128.load(src));
          v128.store(d, v128.load(src, 16), 16);
          src += ld;
        }
      }
    } else {
      for (let p = 0; p < kc; p++) {
        const d = dst + <usize>(p * 32);
        for (let c = 0; c < NR; c++) {
          let v: f32 = 0;
          if (c < cols) {
            const j = <usize>(j0 + c), q = <usize>(pc + p);
            v = transB ? load<f32>(b + (j * <usize>k + q) * 4) : load<f32>(b + (q * <usize>n + j) * 4);
          }
          store<f32>(d + <usize>(c * 4), v);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- micro-kernel

// C tile (MR, NR) at c (row stride ldc bytes) [+]= Apanel (kc, MR)^T Bpanel (kc, NR).
// With fromC the tile starts from C's values, else from +0.
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
  const end = bp + <usize>(kc * 32);
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
    bp += 32;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

// The (mc, nc) block of C at c (row stride ldc bytes) from packA and packB.
function macroKernel(mc: i32, nc: i32, kc: i32, c: usize, ldc: usize, fromC: bool): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const bp = packB + <usize>(jr * kc * 4);
    for (let ir = 0; ir < mc; ir += MR) {
      const rows = min(MR, mc - ir);
      const ap = packA + <usize>(ir * kc * 4);
      const ct = c + <usize>ir * ldc + <usize>(jr * 4);
      if (rows == MR && cols == NR) {
        kernel4x8(kc, ap, bp, ct, ldc, fromC);
      } else {
        // Edge tile: run the full kernel on a scratch tile, copy the valid part.
        if (fromC) {
          for (let r = 0; r < rows; r++) {
            for (let q = 0; q < cols; q++) {
              store<f32>(tile + <usize>((r * NR + q) * 4), load<f32>(ct + <usize>r * ldc + <usize>(q * 4)));
            }
          }
        }
        kernel4x8(kc, ap, bp, tile, NR * 4, fromC);
        for (let r = 0; r < rows; r++) {
          for (let q = 0; q < cols; q++) {
            store<f32>(ct + <usize>r * ldc + <usize>(q * 4), load<f32>(tile + <usize>((r * NR + q) * 4)));
          }
        }
      }
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
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (accumulate == 0) memory.fill(c, 0, <usize>m * <usize>n * 4);
    return;
  }
  // Split K into equal blocks of at most KC (784 -> 4 x 196, not 3 x 256 + 16).
  const kBlocks = (k + KC - 1) / KC;
  const kStep = (k + kBlocks - 1) / kBlocks;
  const ldc = <usize>n * 4;
  for (let jc = 0; jc < n; jc += NC) {
    const nc = min(NC, n - jc);
    for (let pc = 0; pc < k; pc += kStep) {
      const kc = min(kStep, k - pc);
      packBlockB(transB != 0, b, n, k, pc, jc, kc, nc);
      const fromC = accumulate != 0 || pc > 0;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packBlockA(transA != 0, a, m, k, ic, pc, mc, kc);
        macroKernel(mc, nc, kc, c + <usize>ic * ldc + <usize>(jc * 4), ldc, fromC);
      }
    }
  }
}
