// WebAssembly SIMD convolution for dptrain (AssemblyScript): the forward
// pass and both gradients of a 2-D convolution over NCHW samples. Compiled
// with the other kernels into one module by scripts/build-wasm.js; the JS
// side is src/tensor/wasm-conv.ts, the reference (which these match BIT FOR
// BIT: the contract is in src/tensor/conv-kernels.ts) src/tensor/conv-ts.ts.
//
// Letters: N samples, C x H x W the input, O x Ho x Wo the output,
// P = Ho * Wo, K = C * kh * kw taps, tap p = (c * kh + ki) * kw + kj; the
// filters W are (O, K). A geometry block of 14 i32 (C H W O kh kw sh sw dh
// dw pt pl Ho Wo, src/nn/conv-geometry.ts) comes with every call.
//
// How (measured against im2col + gemm: see bench/conv.ts):
// * forward input is first copied into a zero-padded copy xp (N, C, Hp, Wp)
//   (kept for backward): every tap of every output position is then inside
//   xp, with no bounds tests. Tap p of position (oh, ow) is at
//   xp + off[p] + (oh*sh*Wp + ow*sw) floats, off[p] = (c*Hp + ki*dh)*Wp + kj*dw.
// * forward (sw = 1): a micro-kernel like the gemm's keeps a 4 filters x
//   8 positions tile of y in registers and walks the K taps: the 8
//   positions of a tap are 8 consecutive floats of xp (two unaligned
//   loads), the filters' weights come from W packed in panels of 4.
//   That is the gemm's product with the im2col matrix read in place
//   (no im2col, no packing of it). sw > 1: im2col, then the gemm.
// * filter gradient: dW^T (K, O) += col (K, N*P) dY^T, with a 4 taps x 8
//   filters tile in registers, walking the N*P positions in order: the
//   taps are read from xp with load32_splat (any stride), dY^T is dy
//   repacked as (N*P, 8) panels. The bias gradient sums those panels.
// * input gradient (stride 1): a 4 taps x 8 positions tile of dcol = W^T dY
//   in registers (the chain over the O filters), added straight into a
//   padded dx (inputGradDirect: the order that keeps col2im's chains).
//   Other strides: dcol (K, N*P) by the gemm, then col2im, a chunk of
//   samples at a time (dcol stays in cache).
// NOTE (exactness): every sum is the contract's chain (mul then add, in
// order, from the bias, +0 or the gradient's value), never fused, never
// split into partial sums: the tiles only choose which chains run side by
// side in the lanes.
import { gemm } from './gemm';
import { transpose4Store } from './simd';

// How the forward pass and the gradients are computed: 0 the direct
// kernels where they apply (the default: measured faster), 1 im2col + gemm
// (+ col2im) for all three (kept to measure against: bench/conv.ts).
let method = 0;

/** Chooses the method (0 direct, 1 im2col + gemm); the results are the same bits. */
export function setConvMethod(m: i32): void {
  method = m;
}

// Geometry, read from the block at the start of each call.
let C = 0, H = 0, W = 0, O = 0, kh = 0, kw = 0, sh = 0, sw = 0, dh = 0, dw = 0, pt = 0, pl = 0, Ho = 0, Wo = 0;
let K = 0, P = 0, Hp = 0, Wp = 0;

function readGeometry(g: usize): void {
  C = load<i32>(g); H = load<i32>(g, 4); W = load<i32>(g, 8); O = load<i32>(g, 12);
  kh = load<i32>(g, 16); kw = load<i32>(g, 20); sh = load<i32>(g, 24); sw = load<i32>(g, 28);
  dh = load<i32>(g, 32); dw = load<i32>(g, 36); pt = load<i32>(g, 40); pl = load<i32>(g, 44);
  Ho = load<i32>(g, 48); Wo = load<i32>(g, 52);
  K = C * kh * kw;
  P = Ho * Wo;
  // xp: rows and columns that any tap of any position reads; forward tiles
  // of 8 positions may read up to 7 columns past the last (results dropped).
  const wo8 = (Wo + 7) & ~7;
  Hp = (Ho - 1) * sh + (kh - 1) * dh + 1;
  Wp = max(sw == 1 ? wo8 - 1 : 0, (Wo - 1) * sw) + (kw - 1) * dw + 1;
}

@inline function al16(x: i32): i32 { return (x + 3) & ~3; } // floats, rounded up to 16 bytes

/** Floats of the buffer convForward keeps for convBackward: the padded input xp. */
export function convKeepFloats(g: usize, N: i32): i32 {
  readGeometry(g);
  return al16(N * C * Hp * Wp);
}

// Samples per chunk of the input gradient: dcol (K, chunk*P) about 256 KiB.
@inline function dxChunk(N: i32): i32 { return max(1, min(N, 65536 / max(1, K * P))); }
// Samples per chunk of the filter gradient: dY^T's panels of the chunk
// (about FILTER_POSITIONS positions, 32 bytes each) stay in L1 while every
// tap panel walks them.
// (Measured: 128 to all of them made no difference on the CNN's layers.)
const FILTER_POSITIONS = 1024;
@inline function dwChunk(N: i32): i32 { return max(1, min(N, (FILTER_POSITIONS + P - 1) / P)); }

// Scratch layout, in floats from the scratch pointer (all 16-byte aligned):
//   forward   [wpk (O+4, K) panels | bias (O+8) | off (K) | tile 40]  or, sw > 1, [col (K, N*P) | Y (O, N*P)]
//   backward  [dyT (O8, chunk*P) | off (K) | tile 40 | pos (chunk*P) | dY (O, chunk*P) | dcol (K, chunk*P)]
//   backward, method 1: [dyT | off | tile | pos | dY (O, N*P) | col (K, N*P)], dY and col reused by the input gradient
function forwardFloats(N: i32): i32 {
  if (sw == 1 && method == 0) return al16((O + 4) * K) + al16(O + 8) + al16(K) + 40;
  return al16(K * N * P) + al16(O * N * P);
}
//             the input gradient's region [dY | dcol] or, direct, [wT (K4, O) | dyq (O, Ho, Wo8) | dxp (C, Hp, Wp)]
function backwardFloats(N: i32): i32 {
  const o8 = (O + 7) & ~7, chunk = method == 0 ? dxChunk(N) : N;
  const fchunk = method == 0 ? dwChunk(N) : N;
  const viaGemm = al16(O * chunk * P) + al16(K * chunk * P);
  const direct = al16(((K + 3) & ~3) * O) + al16(O * Ho * ((Wo + 7) & ~7)) + al16(C * Hp * Wp);
  return al16(o8 * fchunk * P) + al16(K) + 40 + al16(fchunk * P) + max(viaGemm, direct);
}

// The input gradient runs direct (inputGradDirect) for stride 1, else by the gemm and col2im.
@inline function directInput(): bool { return method == 0 && sh == 1 && sw == 1; }

/** Floats of scratch convForward and convBackward use. */
export function convScratchFloats(g: usize, N: i32): i32 {
  readGeometry(g);
  return max(forwardFloats(N), backwardFloats(N));
}

// ---------------------------------------------------------------- padding, offsets

// xp (N, C, Hp, Wp) from x (N, C, H, W): row r, column q of a plane hold
// x[r - pt, q - pl], or +0 outside x.
function padInput(xp: usize, x: usize, N: i32): void {
  const planes = N * C;
  const q0 = min(max(pl, 0), Wp), q1 = max(q0, min(Wp, W + pl)); // columns inside x
  for (let pln = 0; pln < planes; pln++) {
    const src = x + <usize>(pln * H * W) * 4;
    let dst = xp + <usize>(pln * Hp * Wp) * 4;
    for (let r = 0; r < Hp; r++) {
      const ih = r - pt;
      if (ih < 0 || ih >= H || q1 == q0) {
        memory.fill(dst, 0, <usize>Wp * 4);
      } else {
        if (q0 > 0) memory.fill(dst, 0, <usize>q0 * 4);
        memory.copy(dst + <usize>q0 * 4, src + <usize>(ih * W + q0 - pl) * 4, <usize>(q1 - q0) * 4);
        if (q1 < Wp) memory.fill(dst + <usize>q1 * 4, 0, <usize>(Wp - q1) * 4);
      }
      dst += <usize>Wp * 4;
    }
  }
}

// off[p] in bytes: where tap p sits relative to a position's corner in xp.
function tapOffsets(off: usize): void {
  let p = 0;
  for (let c = 0; c < C; c++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        store<i32>(off + <usize>p * 4, ((c * Hp + ki * dh) * Wp + kj * dw) * 4);
        p++;
      }
    }
  }
}

// ---------------------------------------------------------------- forward

// W (O, K) as panels of 4 rows: the panel of rows ir..ir+3 holds (K, 4)
// row-major, rows past O zero; bias (O) copied with zeros after it (bias
// 0: all zero).
function packFilters(wpk: usize, bpk: usize, w: usize, b: usize): void {
  for (let ir = 0; ir < O; ir += 4) {
    const panel = wpk + <usize>(ir * K) * 4;
    for (let p = 0; p < K; p++) {
      for (let r = 0; r < 4; r++) {
        const o = ir + r;
        store<f32>(panel + <usize>(p * 4 + r) * 4, o < O ? load<f32>(w + <usize>(o * K + p) * 4) : 0);
      }
    }
  }
  for (let o = 0; o < O + 8; o++) store<f32>(bpk + <usize>o * 4, b != 0 && o < O ? load<f32>(b + <usize>o * 4) : 0);
}

// One tile: y rows r < 4 (filters ir + r, row stride ldc bytes) x 8
// positions at dst = the chains over the K taps at base + off[p], starting
// from the bias (bp: 4 floats) or +0. NOTE: 4 filters, not 5 as the gemm's
// tile: with 5, V8 kept accumulators on the stack (measured: 24 GFLOP/s
// against 57 on a 20-filter layer).
function forward4(kc: i32, wp: usize, off: usize, base: usize, bp: usize, useBias: bool, dst: usize, ldc: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (useBias) {
    c00 = v128.load32_splat(bp); c01 = c00;
    c10 = v128.load32_splat(bp, 4); c11 = c10;
    c20 = v128.load32_splat(bp, 8); c21 = c20;
    c30 = v128.load32_splat(bp, 12); c31 = c30;
  }
  const end = off + <usize>kc * 4;
  while (off < end) {
    const a = base + <usize>load<i32>(off);
    const b0 = v128.load(a);
    const b1 = v128.load(a, 16);
    let x = v128.load32_splat(wp);
    c00 = f32x4.add(c00, f32x4.mul(x, b0));
    c01 = f32x4.add(c01, f32x4.mul(x, b1));
    x = v128.load32_splat(wp, 4);
    c10 = f32x4.add(c10, f32x4.mul(x, b0));
    c11 = f32x4.add(c11, f32x4.mul(x, b1));
    x = v128.load32_splat(wp, 8);
    c20 = f32x4.add(c20, f32x4.mul(x, b0));
    c21 = f32x4.add(c21, f32x4.mul(x, b1));
    x = v128.load32_splat(wp, 12);
    c30 = f32x4.add(c30, f32x4.mul(x, b0));
    c31 = f32x4.add(c31, f32x4.mul(x, b1));
    wp += 16;
    off += 4;
  }
  const r1 = dst + ldc, r2 = r1 + ldc, r3 = r2 + ldc;
  v128.store(dst, c00); v128.store(dst, c01, 16);
  v128.store(r1, c10); v128.store(r1, c11, 16);
  v128.store(r2, c20); v128.store(r2, c21, 16);
  v128.store(r3, c30); v128.store(r3, c31, 16);
}

// Direct forward (sw = 1) from xp into y (N, O, P).
function forwardDirect(y: usize, xp: usize, w: usize, b: usize, N: i32, scratch: usize): void {
  const wpk = scratch;
  const bpk = wpk + <usize>al16((O + 4) * K) * 4;
  const off = bpk + <usize>al16(O + 8) * 4;
  const tile = off + <usize>al16(K) * 4;
  packFilters(wpk, bpk, w, b);
  tapOffsets(off);
  const plane = <usize>(C * Hp * Wp) * 4;
  for (let n = 0; n < N; n++) {
    const xn = xp + <usize>n * plane;
    const yn = y + <usize>(n * O * P) * 4;
    for (let oh = 0; oh < Ho; oh++) {
      const rowBase = xn + <usize>(oh * sh * Wp) * 4;
      for (let ow = 0; ow < Wo; ow += 8) {
        const cols = min(8, Wo - ow);
        const base = rowBase + <usize>ow * 4;
        for (let ir = 0; ir < O; ir += 4) {
          const rows = min(4, O - ir);
          const wp = wpk + <usize>(ir * K) * 4, bp = bpk + <usize>ir * 4;
          const dst = yn + <usize>(ir * P + oh * Wo + ow) * 4;
          const full = rows == 4 && cols == 8;
          // A partial tile goes through `tile` (8 floats a row), its valid part copied out.
          const out = full ? dst : tile, ldc = full ? <usize>P * 4 : 32;
          forward4(K, wp, off, base, bp, b != 0, out, ldc);
          if (!full) {
            for (let r = 0; r < rows; r++) memory.copy(dst + <usize>(r * P) * 4, tile + <usize>(r * 8) * 4, <usize>cols * 4);
          }
        }
      }
    }
  }
}

// col (K, N*P) from xp: column (n, oh, ow) holds that position's K taps.
function im2col(col: usize, xp: usize, N: i32): void {
  const NP = N * P;
  const plane = C * Hp * Wp;
  for (let c = 0; c < C; c++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        let dst = col + <usize>(((c * kh + ki) * kw + kj) * NP) * 4;
        for (let n = 0; n < N; n++) {
          for (let oh = 0; oh < Ho; oh++) {
            let src = xp + <usize>(n * plane + (c * Hp + oh * sh + ki * dh) * Wp + kj * dw) * 4;
            if (sw == 1) {
              memory.copy(dst, src, <usize>Wo * 4);
              dst += <usize>Wo * 4;
              continue;
            }
            for (let ow = 0; ow < Wo; ow++) {
              store<f32>(dst, load<f32>(src));
              dst += 4;
              src += <usize>sw * 4;
            }
          }
        }
      }
    }
  }
}

/**
 * y (N, O, Ho, Wo) = conv(x, w) [+ b] (b = 0: no bias); keep receives xp
 * (convKeepFloats), scratch holds convScratchFloats floats.
 */
export function convForward(g: usize, N: i32, y: usize, x: usize, w: usize, b: usize, keep: usize, scratch: usize): void {
  readGeometry(g);
  if (N <= 0) return;
  padInput(keep, x, N);
  if (sw == 1 && method == 0) {
    forwardDirect(y, keep, w, b, N, scratch);
    return;
  }
  const NP = N * P;
  const col = scratch, Y = scratch + <usize>al16(K * NP) * 4;
  im2col(col, keep, N);
  for (let o = 0; o < O; o++) {
    const v = b != 0 ? load<f32>(b + <usize>o * 4) : <f32>0;
    for (let j = 0; j < NP; j++) store<f32>(Y + <usize>(o * NP + j) * 4, v);
  }
  gemm(0, 0, O, NP, K, w, col, Y, b != 0 ? 1 : 0);
  // y (N, O, P) from Y (O, N*P)
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < N; n++) {
      memory.copy(y + <usize>((n * O + o) * P) * 4, Y + <usize>(o * NP + n * P) * 4, <usize>P * 4);
    }
  }
}

// ---------------------------------------------------------------- backward

// dyT (O8, N*P) as panels of 8 filters: panel q holds (N*P, 8) row-major,
// [k][j] = dy[n, 8q + j, pos] for k = n*P + pos (+0 past O).
function packGradT(dyT: usize, dy: usize, N: i32): void {
  const NP = N * P;
  const panels = (O + 7) >> 3;
  for (let q = 0; q < panels; q++) {
    const panel = dyT + <usize>(q * NP * 8) * 4;
    for (let n = 0; n < N; n++) {
      for (let half = 0; half < 2; half++) {
        const o0 = q * 8 + half * 4;
        const dst0 = panel + <usize>(n * P * 8 + half * 4) * 4;
        if (o0 + 4 <= O) {
          const s0 = dy + <usize>((n * O + o0) * P) * 4, ld = <usize>P * 4;
          let j = 0;
          for (; j + 4 <= P; j += 4) {
            const o = <usize>j * 4;
            transpose4Store(v128.load(s0 + o), v128.load(s0 + ld + o), v128.load(s0 + 2 * ld + o), v128.load(s0 + 3 * ld + o),
              dst0 + <usize>(j * 8) * 4, 32);
          }
          for (; j < P; j++) {
            for (let r = 0; r < 4; r++) store<f32>(dst0 + <usize>(j * 8 + r) * 4, load<f32>(s0 + <usize>r * ld + <usize>j * 4));
          }
        } else {
          for (let j = 0; j < P; j++) {
            for (let r = 0; r < 4; r++) {
              const o = o0 + r;
              store<f32>(dst0 + <usize>(j * 8 + r) * 4, o < O ? load<f32>(dy + <usize>((n * O + o) * P + j) * 4) : 0);
            }
          }
        }
      }
    }
  }
}

// db[o] += the column sums of dyT, positions in order: 8 filters' chains
// side by side in two vectors (tile: 8 floats of scratch).
function biasGrad(db: usize, dyT: usize, NP: i32, tile: usize): void {
  const panels = (O + 7) >> 3;
  for (let q = 0; q < panels; q++) {
    const o0 = q * 8, n8 = min(8, O - o0);
    for (let j = 0; j < 8; j++) store<f32>(tile + <usize>j * 4, j < n8 ? load<f32>(db + <usize>(o0 + j) * 4) : 0);
    let s0 = v128.load(tile), s1 = v128.load(tile, 16);
    let src = dyT + <usize>(q * NP * 8) * 4;
    const end = src + <usize>(NP * 8) * 4;
    while (src < end) {
      s0 = f32x4.add(s0, v128.load(src));
      s1 = f32x4.add(s1, v128.load(src, 16));
      src += 32;
    }
    v128.store(tile, s0);
    v128.store(tile, s1, 16);
    for (let j = 0; j < n8; j++) store<f32>(db + <usize>(o0 + j) * 4, load<f32>(tile + <usize>j * 4));
  }
}

// One tile of dW^T: taps p0..p0+3 (offsets t0..t3 in xp, bytes) x the 8
// filters of panel dk (dyT, (cnt, 8)); tile (4, 8) holds the chains' start
// and receives their ends. Walks the cnt positions in order, position k's
// corner at xp + pos[k] (one flat loop). NOTE: 4 taps, not 5 as the
// gemm's tile: with 5, V8 kept two accumulators on the stack (measured).
function filterGrad4(cnt: i32, xp: usize, pos: usize, t0: usize, t1: usize, t2: usize, t3: usize, dk: usize, tile: usize): void {
  let c00 = v128.load(tile), c01 = v128.load(tile, 16);
  let c10 = v128.load(tile, 32), c11 = v128.load(tile, 48);
  let c20 = v128.load(tile, 64), c21 = v128.load(tile, 80);
  let c30 = v128.load(tile, 96), c31 = v128.load(tile, 112);
  const end = pos + <usize>cnt * 4;
  
  while (pos < end) {
    const a = xp + <usize>load<i32>(pos);
    const b0 = v128.load(dk);
    const b1 = v128.load(dk, 16);
    let x = v128.load32_splat(a + t0);
    c00 = f32x4.add(c00, f32x4.mul(x, b0));
    c01 = f32x4.add(c01, f32x4.mul(x, b1));
    x = v128.load32_splat(a + t1);
    c10 = f32x4.add(c10, f32x4.mul(x, b0));
    c11 = f32x4.add(c11, f32x4.mul(x, b1));
    x = v128.load32_splat(a + t2);
    c20 = f32x4.add(c20, f32x4.mul(x, b0));
    c21 = f32x4.add(c21, f32x4.mul(x, b1));
    x = v128.load32_splat(a + t3);
    c30 = f32x4.add(c30, f32x4.mul(x, b0));
    c31 = f32x4.add(c31, f32x4.mul(x, b1));
    pos += 4;
    dk += 32;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
}

// The same when the 4 taps are adjacent floats of xp (t_r = t0 + 4r, taps
// of one kernel row): the taps at immediate offsets of one address.
function filterGrad4c(cnt: i32, xp: usize, pos: usize, t0: usize, dk: usize, tile: usize): void {
  let c00 = v128.load(tile), c01 = v128.load(tile, 16);
  let c10 = v128.load(tile, 32), c11 = v128.load(tile, 48);
  let c20 = v128.load(tile, 64), c21 = v128.load(tile, 80);
  let c30 = v128.load(tile, 96), c31 = v128.load(tile, 112);
  const end = pos + <usize>cnt * 4;
  xp += t0;
  while (pos < end) {
    const a = xp + <usize>load<i32>(pos);
    const b0 = v128.load(dk);
    const b1 = v128.load(dk, 16);
    let x = v128.load32_splat(a);
    c00 = f32x4.add(c00, f32x4.mul(x, b0));
    c01 = f32x4.add(c01, f32x4.mul(x, b1));
    x = v128.load32_splat(a, 4);
    c10 = f32x4.add(c10, f32x4.mul(x, b0));
    c11 = f32x4.add(c11, f32x4.mul(x, b1));
    x = v128.load32_splat(a, 8);
    c20 = f32x4.add(c20, f32x4.mul(x, b0));
    c21 = f32x4.add(c21, f32x4.mul(x, b1));
    x = v128.load32_splat(a, 12);
    c30 = f32x4.add(c30, f32x4.mul(x, b0));
    c31 = f32x4.add(c31, f32x4.mul(x, b1));
    pos += 4;
    dk += 32;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
}

// dW (O, K) += dY col^T, tap panels of 4 (a short last panel repeats its
// last tap; those chains are dropped).
function filterGrads(dw: usize, xp: usize, dyT: usize, N: i32, off: usize, pos: usize, tile: usize): void {
  const NP = N * P;
  // pos[k]: the corner of position k = (n, oh, ow) in xp, bytes.
  const plane = C * Hp * Wp;
  let k = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) store<i32>(pos + <usize>(k++) * 4, (n * plane + oh * sh * Wp + ow * sw) * 4);
    }
  }
  const panels = (O + 7) >> 3;
  for (let p0 = 0; p0 < K; p0 += 4) {
    const taps = min(4, K - p0);
    const t0 = <usize>load<i32>(off + <usize>p0 * 4);
    const t1 = <usize>load<i32>(off + <usize>(p0 + min(1, taps - 1)) * 4);
    const t2 = <usize>load<i32>(off + <usize>(p0 + min(2, taps - 1)) * 4);
    const t3 = <usize>load<i32>(off + <usize>(p0 + min(3, taps - 1)) * 4);
    const contiguous = t1 == t0 + 4 && t2 == t0 + 8 && t3 == t0 + 12;
    for (let q = 0; q < panels; q++) {
      const o0 = q * 8, n8 = min(8, O - o0);
      for (let r = 0; r < 4; r++) {
        for (let j = 0; j < 8; j++) {
          const v: f32 = r < taps && j < n8 ? load<f32>(dw + <usize>((o0 + j) * K + p0 + r) * 4) : 0;
          store<f32>(tile + <usize>(r * 8 + j) * 4, v);
        }
      }
      const dk = dyT + <usize>(q * NP * 8) * 4;
      if (contiguous) filterGrad4c(NP, xp, pos, t0, dk, tile);
      else filterGrad4(NP, xp, pos, t0, t1, t2, t3, dk, tile);
      for (let r = 0; r < taps; r++) {
        for (let j = 0; j < n8; j++) store<f32>(dw + <usize>((o0 + j) * K + p0 + r) * 4, load<f32>(tile + <usize>(r * 8 + j) * 4));
      }
    }
  }
}

// dx (n0.., C, H, W) of the chunk's `cn` samples = col2im(dcol (K, cn*P)):
// each cell the sum of its taps' dcol values, taps in order, from +0.
function col2im(dx: usize, dcol: usize, cn: i32): void {
  const NP = cn * P;
  memory.fill(dx, 0, <usize>(cn * C * H * W) * 4);
  for (let c = 0; c < C; c++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = dcol + <usize>(((c * kh + ki) * kw + kj) * NP) * 4;
        // Columns ow with iw = ow*sw + kj*dw - pl inside [0, W): ow0 .. ow1-1.
        let ow0 = 0;
        while (ow0 < Wo && ow0 * sw + kj * dw - pl < 0) ow0++;
        let ow1 = Wo;
        while (ow1 > ow0 && (ow1 - 1) * sw + kj * dw - pl >= W) ow1--;
        for (let n = 0; n < cn; n++) {
          const plane = dx + <usize>((n * C + c) * H * W) * 4;
          for (let oh = 0; oh < Ho; oh++) {
            const ih = oh * sh + ki * dh - pt;
            if (ih < 0 || ih >= H) continue;
            let src = row + <usize>(n * P + oh * Wo + ow0) * 4;
            let dst = plane + <usize>(ih * W + ow0 * sw + kj * dw - pl) * 4;
            let ow = ow0;
            if (sw == 1) {
              for (; ow + 4 <= ow1; ow += 4) {
                v128.store(dst, f32x4.add(v128.load(dst), v128.load(src)));
                src += 16;
                dst += 16;
              }
            }
            for (; ow < ow1; ow++) {
              store<f32>(dst, load<f32>(dst) + load<f32>(src));
              src += 4;
              dst += <usize>sw * 4;
            }
          }
        }
      }
    }
  }
}

// dY (O, cn*P) from samples n0..n0+cn-1 of dy (N, O, P).
function channelMajor(dY: usize, dy: usize, n0: i32, cn: i32): void {
  const cNP = cn * P;
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < cn; n++) {
      memory.copy(dY + <usize>(o * cNP + n * P) * 4, dy + <usize>(((n0 + n) * O + o) * P) * 4, <usize>P * 4);
    }
  }
}

// One tile of the input gradient: 4 taps (weights wt: (O, 4), tap r's
// column r) x 8 positions (dq: dyq at the tile, o stride ostride bytes).
// t[r] = the chain over o of W[o, tap r] * dy (a dcol value), added into
// dxp at d0..d3, the cells tap r of the 8 positions reads.
@inline
function inputTile(kc: i32, wt: usize, dq: usize, ostride: usize, d0: usize, d1: usize, d2: usize, d3: usize): void {
  let t00 = f32x4.splat(0), t01 = f32x4.splat(0), t10 = f32x4.splat(0), t11 = f32x4.splat(0);
  let t20 = f32x4.splat(0), t21 = f32x4.splat(0), t30 = f32x4.splat(0), t31 = f32x4.splat(0);
  const end = wt + <usize>kc * 16;
  while (wt < end) {
    const b0 = v128.load(dq);
    const b1 = v128.load(dq, 16);
    let x = v128.load32_splat(wt);
    t00 = f32x4.add(t00, f32x4.mul(x, b0));
    t01 = f32x4.add(t01, f32x4.mul(x, b1));
    x = v128.load32_splat(wt, 4);
    t10 = f32x4.add(t10, f32x4.mul(x, b0));
    t11 = f32x4.add(t11, f32x4.mul(x, b1));
    x = v128.load32_splat(wt, 8);
    t20 = f32x4.add(t20, f32x4.mul(x, b0));
    t21 = f32x4.add(t21, f32x4.mul(x, b1));
    x = v128.load32_splat(wt, 12);
    t30 = f32x4.add(t30, f32x4.mul(x, b0));
    t31 = f32x4.add(t31, f32x4.mul(x, b1));
    wt += 16;
    dq += ostride;
  }
  v128.store(d0, f32x4.add(v128.load(d0), t00)); v128.store(d0, f32x4.add(v128.load(d0, 16), t01), 16);
  v128.store(d1, f32x4.add(v128.load(d1), t10)); v128.store(d1, f32x4.add(v128.load(d1, 16), t11), 16);
  v128.store(d2, f32x4.add(v128.load(d2), t20)); v128.store(d2, f32x4.add(v128.load(d2, 16), t21), 16);
  v128.store(d3, f32x4.add(v128.load(d3), t30)); v128.store(d3, f32x4.add(v128.load(d3, 16), t31), 16);
}

// dx (N, C, H, W) for stride 1, a sample at a time: the taps in panels of
// 4, in order; for each, every position's dcol values (computed in
// registers, never stored) added into dxp, a zero-padded copy of the
// sample's dx laid out as xp, then cropped into dx. A tap's values go to
// a cell from one position at most, and the positions run so that each
// cell sums its taps in order: col2im's chain. Positions past Wo read
// zeros of dyq and add +0 (no change: a sum from +0 is never -0); so do
// the weights of a short last panel.
function inputGradDirect(dx: usize, dy: usize, w: usize, N: i32, off: usize, region: usize): void {
  const K4 = (K + 3) & ~3, wo8 = (Wo + 7) & ~7;
  const wT = region;
  const dyq = wT + <usize>al16(K4 * O) * 4;
  const dxp = dyq + <usize>al16(O * Ho * wo8) * 4;
  // wT: panel j holds (O, 4): [o][r] = W[o, 4j + r] (+0 past K).
  for (let p0 = 0; p0 < K4; p0 += 4) {
    for (let o = 0; o < O; o++) {
      for (let r = 0; r < 4; r++) {
        const p = p0 + r;
        store<f32>(wT + <usize>(p0 * O + o * 4 + r) * 4, p < K ? load<f32>(w + <usize>(o * K + p) * 4) : 0);
      }
    }
  }
  memory.fill(dyq, 0, <usize>(O * Ho * wo8) * 4);
  const ostride = <usize>(Ho * wo8) * 4;
  for (let n = 0; n < N; n++) {
    // dyq (O, Ho, wo8): sample n of dy, rows padded to wo8 with zeros.
    for (let o = 0; o < O; o++) {
      for (let oh = 0; oh < Ho; oh++) {
        memory.copy(dyq + <usize>((o * Ho + oh) * wo8) * 4, dy + <usize>(((n * O + o) * Ho + oh) * Wo) * 4, <usize>Wo * 4);
      }
    }
    memory.fill(dxp, 0, <usize>(C * Hp * Wp) * 4);
    for (let p0 = 0; p0 < K; p0 += 4) {
      const last = min(K, p0 + 4) - 1;
      const o0 = dxp + <usize>load<i32>(off + <usize>p0 * 4);
      const o1 = dxp + <usize>load<i32>(off + <usize>min(p0 + 1, last) * 4);
      const o2 = dxp + <usize>load<i32>(off + <usize>min(p0 + 2, last) * 4);
      const o3 = dxp + <usize>load<i32>(off + <usize>min(p0 + 3, last) * 4);
      const wt = wT + <usize>(p0 * O) * 4;
      // NOTE: positions from the last to the first. Tap r reaches a cell from
      // the position off[p_r] before it, and off grows with p: going down, a
      // cell meets its taps in order (the 4 taps of one tile are added in
      // order too).
      for (let oh = Ho - 1; oh >= 0; oh--) {
        for (let ow = wo8 - 8; ow >= 0; ow -= 8) {
          const at = <usize>(oh * Wp + ow) * 4;
          inputTile(O, wt, dyq + <usize>(oh * wo8 + ow) * 4, ostride, o0 + at, o1 + at, o2 + at, o3 + at);
        }
      }
    }
    // dx[n, c, ih, iw] = dxp[c, ih + pt, iw + pl]
    for (let c = 0; c < C; c++) {
      for (let ih = 0; ih < H; ih++) {
        memory.copy(dx + <usize>(((n * C + c) * H + ih) * W) * 4, dxp + <usize>((c * Hp + ih + pt) * Wp + pl) * 4, <usize>W * 4);
      }
    }
  }
}

/**
 * Backward of convForward (same g, N, w, keep): dW += , db += (db = 0: no
 * bias), dx = (dx = 0: skipped).
 */
export function convBackward(g: usize, N: i32, dx: usize, dw: usize, db: usize, dy: usize, w: usize, keep: usize, scratch: usize): void {
  readGeometry(g);
  if (N <= 0) return;
  const NP = N * P, chunk = method == 0 ? dxChunk(N) : N, fchunk = method == 0 ? dwChunk(N) : N;
  const dyT = scratch;
  const off = dyT + <usize>al16(((O + 7) & ~7) * fchunk * P) * 4;
  const tile = off + <usize>al16(K) * 4;
  const pos = tile + 40 * 4;
  const dY = pos + <usize>al16(fchunk * P) * 4;
  const dcol = dY + <usize>al16(O * chunk * P) * 4;
  if (method == 1) {
    packGradT(dyT, dy, N);
    if (db != 0) biasGrad(db, dyT, NP, tile);
    // im2col + gemm: dW (O, K) += dY (O, N*P) col^T, dcol = W^T dY for the whole batch.
    const col = dcol;
    channelMajor(dY, dy, 0, N);
    im2col(col, keep, N);
    gemm(0, 1, O, K, NP, dY, col, dw, 1);
    if (dx == 0) return;
    gemm(1, 0, K, NP, O, w, dY, dcol, 0);
    col2im(dx, dcol, N);
    return;
  }
  // A chunk of samples at a time: the chains of db and dW go on through
  // memory from one chunk to the next (float32 either way: the same bits).
  tapOffsets(off);
  const plane = <usize>(C * Hp * Wp) * 4;
  for (let n0 = 0; n0 < N; n0 += fchunk) {
    const cn = min(fchunk, N - n0);
    packGradT(dyT, dy + <usize>(n0 * O * P) * 4, cn);
    if (db != 0) biasGrad(db, dyT, cn * P, tile);
    filterGrads(dw, keep + <usize>n0 * plane, dyT, cn, off, pos, tile);
  }
  if (dx == 0) return;
  if (directInput()) {
    inputGradDirect(dx, dy, w, N, off, dY);
    return;
  }
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const cn = min(chunk, N - n0), cNP = cn * P;
    // dY (O, cn*P) from dy (cn, O, P), then dcol (K, cn*P) = W^T dY.
    channelMajor(dY, dy, n0, cn);
    gemm(1, 0, K, cNP, O, w, dY, dcol, 0);
    col2im(dx + <usize>(n0 * C * H * W) * 4, dcol, cn);
  }
}
