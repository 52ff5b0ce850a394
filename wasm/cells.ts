// WebAssembly SIMD elementwise kernels for dptrain (AssemblyScript): the
// fused LSTM and GRU cells of one timestep (forward and backward), and the
// row sums that bias gradients need. Compiled with wasm/gemm.ts into one
// module by scripts/build-wasm.js; the JS side is src/tensor/wasm-kernels.ts,
// the pure-TypeScript reference is src/tensor/cells.ts.
//
// Letters as in src/nn/lstm.ts and gru.ts: B batch, T timesteps, H hidden
// units, G = 4H (LSTM) or 3H (GRU). Whole-sequence buffers are batch-major,
// row (b, t) at b*T + t; per-step buffers (h, zh, dh, dc, dGt) are (B, .).
// Every pointer is a byte offset into the imported memory.
//
// NOTE (exactness): all arithmetic is float32, one IEEE operation at a time,
// no fused multiply-add, so the same .wasm gives the same bits in every
// engine (Node, worker threads, Chromium). exp, sigmoid and tanh are the
// fixed polynomials below, not the engine's Math functions: they agree with
// the float64 Math.exp/Math.tanh of the reference to about 2e-7 relative
// (a few float32 ulps), so these cells match the TypeScript reference
// within tolerance, not bit for bit. Each element's result depends only on
// its own inputs: a row computes the same bits whatever B is. Columns past a
// multiple of 4 (H % 4 != 0) go through the very same vector arithmetic,
// loaded and stored one lane at a time.

// ---------------------------------------------------------------- exp, sigmoid, tanh

// exp(x) (Cephes expf): x = n ln2 + r with |r| <= ln2/2, ln2 split in two so
// that n*C1 is exact; e^r by a degree-7 polynomial; 2^n built in the exponent
// bits. x is clamped to [-87, 88] so that 2^n stays a normal float (n in
// -126..127): exp(-87) = 1.6e-38, exp(88) = 1.7e38.
// n = round(x / ln2) comes from the rounding of an add: with
// MAGIC = 1.5 * 2^23, x/ln2 + MAGIC rounds (to nearest, ties to even) to an
// integer held in the low mantissa bits, so subtracting MAGIC gives n as a
// float and subtracting MAGIC's bits gives n as an integer.
const EXP_LO: f32 = -87.0;
const EXP_HI: f32 = 88.0;
const LOG2E: f32 = 1.44269504088896341;
const MAGIC: f32 = 12582912.0; // 0x4b400000
const MAGIC_BITS: i32 = 0x4b400000;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

@inline
function expv(x0: v128): v128 {
  // NOTE: pmin/pmax (one instruction each) rather than min/max (NaN- and
  // -0-aware sequences); both are fully specified, so deterministic.
  const x1 = f32x4.pmax(f32x4.pmin(x0, f32x4.splat(EXP_HI)), f32x4.splat(EXP_LO));
  const t = f32x4.add(f32x4.mul(x1, f32x4.splat(LOG2E)), f32x4.splat(MAGIC));
  const fx = f32x4.sub(t, f32x4.splat(MAGIC));
  const x = f32x4.sub(f32x4.sub(x1, f32x4.mul(fx, f32x4.splat(LN2_HI))), f32x4.mul(fx, f32x4.splat(LN2_LO)));
  let y = f32x4.splat(P0);
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(P1));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(P2));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(P3));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(P4));
  y = f32x4.add(f32x4.mul(y, x), f32x4.splat(P5));
  y = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(y, x), x), x), f32x4.splat(1));
  const n = i32x4.sub(t, i32x4.splat(MAGIC_BITS));
  const pow2n = i32x4.shl(i32x4.add(n, i32x4.splat(127)), 23);
  return f32x4.mul(y, pow2n);
}

/** 1 / (1 + exp(-x)). */
@inline
function sigmoidv(x: v128): v128 {
  const one = f32x4.splat(1);
  return f32x4.div(one, f32x4.add(one, expv(f32x4.neg(x))));
}

// tanh(x) (Cephes tanhf), on |x| then given the sign of x: for |x| < 0.625
// the odd polynomial |x| + |x|^3 P(x^2) (no cancellation near 0), otherwise
// 1 - 2 / (exp(2|x|) + 1). Both are computed and the lanes selected.
const TANH_SPLIT: f32 = 0.625;
const T0: f32 = -5.70498872745e-3;
const T1: f32 = 2.06390887954e-2;
const T2: f32 = -5.37397155531e-2;
const T3: f32 = 1.33314422036e-1;
const T4: f32 = -3.33332819422e-1;

@inline
function tanhv(x: v128): v128 {
  const ax = f32x4.abs(x);
  const z = f32x4.mul(ax, ax);
  let p = f32x4.splat(T0);
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(T1));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(T2));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(T3));
  p = f32x4.add(f32x4.mul(p, z), f32x4.splat(T4));
  const small = f32x4.add(f32x4.mul(f32x4.mul(p, z), ax), ax);
  const one = f32x4.splat(1);
  const e = expv(f32x4.add(ax, ax));
  const big = f32x4.sub(one, f32x4.div(f32x4.splat(2), f32x4.add(e, one)));
  const mag = v128.bitselect(small, big, f32x4.lt(ax, f32x4.splat(TANH_SPLIT)));
  // copysign(mag, x): the magnitude bits of mag, the sign bit of x (tanh(-0) = -0).
  return v128.bitselect(x, mag, i32x4.splat(0x80000000));
}

// Scalar entry points of the same vector code (lane 0), for the tests.
export function expf32(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}
export function sigmoidf32(x: f32): f32 {
  return f32x4.extract_lane(sigmoidv(f32x4.splat(x)), 0);
}
export function tanhf32(x: f32): f32 {
  return f32x4.extract_lane(tanhv(f32x4.splat(x)), 0);
}

// ---------------------------------------------------------------- partial vectors

// Loads `lanes` (1..3) floats at p into the low lanes of a vector (the rest 0).
@inline
function loadPart(p: usize, lanes: i32): v128 {
  let v = f32x4.splat(0);
  v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (lanes > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (lanes > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

// Stores the low `lanes` (1..3) lanes of v at p.
@inline
function storePart(p: usize, v: v128, lanes: i32): void {
  store<f32>(p, f32x4.extract_lane(v, 0));
  if (lanes > 1) store<f32>(p, f32x4.extract_lane(v, 1), 4);
  if (lanes > 2) store<f32>(p, f32x4.extract_lane(v, 2), 8);
}

// A vector of 4 floats at p, or of the first `lanes` of them when lanes < 4.
@inline
function ld(p: usize, lanes: i32): v128 {
  return lanes == 4 ? v128.load(p) : loadPart(p, lanes);
}
@inline
function st(p: usize, v: v128, lanes: i32): void {
  if (lanes == 4) v128.store(p, v);
  else storePart(p, v, lanes);
}

// ---------------------------------------------------------------- LSTM

// Each cell below walks a row in groups of 4 columns: full groups with
// plain vector loads, then one group of the 1..3 columns left (lanes < 4).
// The group's code is an @inline function of `lanes`, so both loops compile
// to straight-line code with the lane count known.

// Columns o4 .. o4 + 4*lanes bytes of one row of the LSTM forward step.
@inline
function lstmForwardCols(a: usize, z: usize, bb: usize, cPrev: usize, tcRow: usize, hpRow: usize, hRow: usize,
  hb: usize, lanes: i32): void {
  const i = sigmoidv(f32x4.add(f32x4.add(ld(a, lanes), ld(z, lanes)), ld(bb, lanes)));
  const f = sigmoidv(f32x4.add(f32x4.add(ld(a + hb, lanes), ld(z + hb, lanes)), ld(bb + hb, lanes)));
  const g = tanhv(f32x4.add(f32x4.add(ld(a + 2 * hb, lanes), ld(z + 2 * hb, lanes)), ld(bb + 2 * hb, lanes)));
  const o = sigmoidv(f32x4.add(f32x4.add(ld(a + 3 * hb, lanes), ld(z + 3 * hb, lanes)), ld(bb + 3 * hb, lanes)));
  st(a, i, lanes);
  st(a + hb, f, lanes);
  st(a + 2 * hb, g, lanes);
  st(a + 3 * hb, o, lanes);
  const ct = f32x4.add(f32x4.mul(f, ld(cPrev, lanes)), f32x4.mul(i, g));
  st(cPrev + hb, ct, lanes); // c_t, the next slot of the same row
  const tct = tanhv(ct);
  st(tcRow, tct, lanes);
  st(hpRow, ld(hRow, lanes), lanes);
  st(hRow, f32x4.mul(o, tct), lanes);
}

/**
 * One forward step t of the LSTM cell, all B rows (src/nn/lstm.ts):
 *   z = act(b, t) + zh(b) + bias  (B, 4H), gates i f g o
 *   act(b, t) <- (sigmoid(z_i), sigmoid(z_f), tanh(z_g), sigmoid(z_o))
 *   c_t = f * c_{t-1} + i * g      c (B, T+1, H): c_{t-1} at slot t, c_t at slot t+1
 *   tc(b, t) = tanh(c_t)           tc (B, T, H)
 *   hPrev(b, t) = h(b); h(b) = o * tanh(c_t)
 */
export function lstmForwardStep(B: i32, T: i32, H: i32, t: i32,
  act: usize, zh: usize, bias: usize, c: usize, tc: usize, hPrev: usize, h: usize): void {
  const G = 4 * H;
  const hb = <usize>(H * 4); // bytes per gate block
  for (let bi = 0; bi < B; bi++) {
    const ra = act + <usize>((bi * T + t) * G) * 4;
    const rz = zh + <usize>(bi * G) * 4;
    const rc = c + <usize>((bi * (T + 1) + t) * H) * 4;
    const rt = <usize>((bi * T + t) * H) * 4;
    const rh = h + <usize>(bi * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o4 = <usize>(j * 4);
      lstmForwardCols(ra + o4, rz + o4, bias + o4, rc + o4, tc + rt + o4, hPrev + rt + o4, rh + o4, hb, 4);
    }
    if (j < H) {
      const o4 = <usize>(j * 4);
      lstmForwardCols(ra + o4, rz + o4, bias + o4, rc + o4, tc + rt + o4, hPrev + rt + o4, rh + o4, hb, H - j);
    }
  }
}

// Columns of one row of the LSTM backward step.
@inline
function lstmBackwardCols(a: usize, cPrev: usize, tcRow: usize, dyRow: usize, dhRow: usize, dcRow: usize,
  dGRow: usize, dGtRow: usize, hb: usize, lanes: i32): void {
  const one = f32x4.splat(1);
  let dht = ld(dhRow, lanes);
  if (dyRow != 0) dht = f32x4.add(dht, ld(dyRow, lanes));
  const i = ld(a, lanes), f = ld(a + hb, lanes), g = ld(a + 2 * hb, lanes), o = ld(a + 3 * hb, lanes);
  const tct = ld(tcRow, lanes);
  const dct = f32x4.add(ld(dcRow, lanes), f32x4.mul(f32x4.mul(dht, o), f32x4.sub(one, f32x4.mul(tct, tct))));
  const dzi = f32x4.mul(f32x4.mul(f32x4.mul(dct, g), i), f32x4.sub(one, i));
  const dzf = f32x4.mul(f32x4.mul(f32x4.mul(dct, ld(cPrev, lanes)), f), f32x4.sub(one, f));
  const dzg = f32x4.mul(f32x4.mul(dct, i), f32x4.sub(one, f32x4.mul(g, g)));
  const dzo = f32x4.mul(f32x4.mul(f32x4.mul(dht, tct), o), f32x4.sub(one, o));
  st(dcRow, f32x4.mul(dct, f), lanes);
  st(dGRow, dzi, lanes); st(dGRow + hb, dzf, lanes); st(dGRow + 2 * hb, dzg, lanes); st(dGRow + 3 * hb, dzo, lanes);
  st(dGtRow, dzi, lanes); st(dGtRow + hb, dzf, lanes); st(dGtRow + 2 * hb, dzg, lanes); st(dGtRow + 3 * hb, dzo, lanes);
}

/**
 * One backward step t of the LSTM cell, all B rows. dh, dc (B, H) hold the
 * gradient on h_t, c_t from later steps (dy (B, T, H), if not 0, is added
 * to dh); writes dz_t into dG (B, T, 4H) and dGt (B, 4H), and dc_{t-1} into dc.
 */
export function lstmBackwardStep(B: i32, T: i32, H: i32, t: i32,
  act: usize, c: usize, tc: usize, dy: usize, dh: usize, dc: usize, dG: usize, dGt: usize): void {
  const G = 4 * H;
  const hb = <usize>(H * 4);
  for (let bi = 0; bi < B; bi++) {
    const ra = <usize>((bi * T + t) * G) * 4;
    const rg = dGt + <usize>(bi * G) * 4;
    const rc = c + <usize>((bi * (T + 1) + t) * H) * 4;
    const rt = <usize>((bi * T + t) * H) * 4;
    const rh = <usize>(bi * H) * 4;
    const dyRow = dy != 0 ? dy + rt : 0;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o4 = <usize>(j * 4);
      lstmBackwardCols(act + ra + o4, rc + o4, tc + rt + o4, dyRow != 0 ? dyRow + o4 : 0, dh + rh + o4, dc + rh + o4,
        dG + ra + o4, rg + o4, hb, 4);
    }
    if (j < H) {
      const o4 = <usize>(j * 4);
      lstmBackwardCols(act + ra + o4, rc + o4, tc + rt + o4, dyRow != 0 ? dyRow + o4 : 0, dh + rh + o4, dc + rh + o4,
        dG + ra + o4, rg + o4, hb, H - j);
    }
  }
}

// ---------------------------------------------------------------- GRU

// Columns of one row of the GRU forward step.
@inline
function gruForwardCols(a: usize, z: usize, bi4: usize, bh4: usize, hnRow: usize, hpRow: usize, hRow: usize,
  hb: usize, lanes: i32): void {
  const one = f32x4.splat(1);
  const r = sigmoidv(f32x4.add(f32x4.add(f32x4.add(ld(a, lanes), ld(bi4, lanes)), ld(z, lanes)), ld(bh4, lanes)));
  const u = sigmoidv(f32x4.add(f32x4.add(f32x4.add(ld(a + hb, lanes), ld(bi4 + hb, lanes)), ld(z + hb, lanes)), ld(bh4 + hb, lanes)));
  const hnv = f32x4.add(ld(z + 2 * hb, lanes), ld(bh4 + 2 * hb, lanes));
  st(hnRow, hnv, lanes);
  const n = tanhv(f32x4.add(f32x4.add(ld(a + 2 * hb, lanes), ld(bi4 + 2 * hb, lanes)), f32x4.mul(r, hnv)));
  st(a, r, lanes); st(a + hb, u, lanes); st(a + 2 * hb, n, lanes);
  const hp = ld(hRow, lanes);
  st(hpRow, hp, lanes);
  st(hRow, f32x4.add(f32x4.mul(f32x4.sub(one, u), n), f32x4.mul(u, hp)), lanes);
}

/**
 * One forward step t of the GRU cell, all B rows (src/nn/gru.ts):
 *   r = sigmoid(a_r + b_ir + zh_r + b_hr)   z = sigmoid(a_z + b_iz + zh_z + b_hz)
 *   hn(b, t) = zh_n + b_hn                  n = tanh(a_n + b_in + r * hn)
 *   act(b, t) <- (r, z, n); hPrev(b, t) = h(b); h(b) = (1 - z) * n + z * h(b)
 */
export function gruForwardStep(B: i32, T: i32, H: i32, t: i32,
  act: usize, zh: usize, bih: usize, bhh: usize, hn: usize, hPrev: usize, h: usize): void {
  const G = 3 * H;
  const hb = <usize>(H * 4);
  for (let bi = 0; bi < B; bi++) {
    const ra = act + <usize>((bi * T + t) * G) * 4;
    const rz = zh + <usize>(bi * G) * 4;
    const rt = <usize>((bi * T + t) * H) * 4;
    const rh = h + <usize>(bi * H) * 4;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o4 = <usize>(j * 4);
      gruForwardCols(ra + o4, rz + o4, bih + o4, bhh + o4, hn + rt + o4, hPrev + rt + o4, rh + o4, hb, 4);
    }
    if (j < H) {
      const o4 = <usize>(j * 4);
      gruForwardCols(ra + o4, rz + o4, bih + o4, bhh + o4, hn + rt + o4, hPrev + rt + o4, rh + o4, hb, H - j);
    }
  }
}

// Columns of one row of the GRU backward step.
@inline
function gruBackwardCols(a: usize, hnRow: usize, hpRow: usize, dyRow: usize, dhRow: usize,
  dGxRow: usize, dGhRow: usize, dGtRow: usize, hb: usize, lanes: i32): void {
  const one = f32x4.splat(1);
  let dht = ld(dhRow, lanes);
  if (dyRow != 0) dht = f32x4.add(dht, ld(dyRow, lanes));
  const r = ld(a, lanes), z = ld(a + hb, lanes), n = ld(a + 2 * hb, lanes);
  const dzn = f32x4.mul(f32x4.mul(dht, f32x4.sub(one, z)), f32x4.sub(one, f32x4.mul(n, n)));
  const dzz = f32x4.mul(f32x4.mul(f32x4.mul(dht, f32x4.sub(ld(hpRow, lanes), n)), z), f32x4.sub(one, z));
  const dzr = f32x4.mul(f32x4.mul(f32x4.mul(dzn, ld(hnRow, lanes)), r), f32x4.sub(one, r));
  const dhn = f32x4.mul(dzn, r);
  st(dGxRow, dzr, lanes); st(dGxRow + hb, dzz, lanes); st(dGxRow + 2 * hb, dzn, lanes);
  st(dGhRow, dzr, lanes); st(dGhRow + hb, dzz, lanes); st(dGhRow + 2 * hb, dhn, lanes);
  st(dGtRow, dzr, lanes); st(dGtRow + hb, dzz, lanes); st(dGtRow + 2 * hb, dhn, lanes);
  st(dhRow, f32x4.mul(dht, z), lanes);
}

/**
 * One backward step t of the GRU cell, all B rows. dh (B, H) holds the
 * gradient on h_t (dy (B, T, H), if not 0, is added); writes dLoss/d(a_t)
 * into dGx (B, T, 3H), dLoss/d(zh_t) into dGh (B, T, 3H) and dGt (B, 3H),
 * and the direct part of dh_{t-1} (dht * z) into dh.
 */
export function gruBackwardStep(B: i32, T: i32, H: i32, t: i32,
  act: usize, hn: usize, hPrev: usize, dy: usize, dh: usize, dGx: usize, dGh: usize, dGt: usize): void {
  const G = 3 * H;
  const hb = <usize>(H * 4);
  for (let bi = 0; bi < B; bi++) {
    const ra = <usize>((bi * T + t) * G) * 4;
    const rg = dGt + <usize>(bi * G) * 4;
    const rt = <usize>((bi * T + t) * H) * 4;
    const rh = dh + <usize>(bi * H) * 4;
    const dyRow = dy != 0 ? dy + rt : 0;
    let j = 0;
    for (; j + 4 <= H; j += 4) {
      const o4 = <usize>(j * 4);
      gruBackwardCols(act + ra + o4, hn + rt + o4, hPrev + rt + o4, dyRow != 0 ? dyRow + o4 : 0, rh + o4,
        dGx + ra + o4, dGh + ra + o4, rg + o4, hb, 4);
    }
    if (j < H) {
      const o4 = <usize>(j * 4);
      gruBackwardCols(act + ra + o4, hn + rt + o4, hPrev + rt + o4, dyRow != 0 ? dyRow + o4 : 0, rh + o4,
        dGx + ra + o4, dGh + ra + o4, rg + o4, hb, H - j);
    }
  }
}

// ---------------------------------------------------------------- reductions

/**
 * db (N) += the R rows of dG (R, N), row 0 first, each partial sum a float32
 * (bit-identical to the reference: a float64 sum of two float32 values,
 * rounded to float32, is the float32 sum).
 */
export function addRowSums(db: usize, dG: usize, R: i32, N: i32): void {
  const nb = <usize>(N * 4);
  let j = 0;
  // Blocks of 16 columns kept in registers over all rows, then 4, then the rest.
  for (; j + 16 <= N; j += 16) {
    const d = db + <usize>(j * 4);
    let s0 = v128.load(d), s1 = v128.load(d, 16), s2 = v128.load(d, 32), s3 = v128.load(d, 48);
    let p = dG + <usize>(j * 4);
    for (let r = 0; r < R; r++) {
      s0 = f32x4.add(s0, v128.load(p));
      s1 = f32x4.add(s1, v128.load(p, 16));
      s2 = f32x4.add(s2, v128.load(p, 32));
      s3 = f32x4.add(s3, v128.load(p, 48));
      p += nb;
    }
    v128.store(d, s0); v128.store(d, s1, 16); v128.store(d, s2, 32); v128.store(d, s3, 48);
  }
  for (; j < N; j += 4) {
    const lanes = min(4, N - j);
    const d = db + <usize>(j * 4);
    let s = ld(d, lanes);
    let p = dG + <usize>(j * 4);
    for (let r = 0; r < R; r++) {
      s = f32x4.add(s, ld(p, lanes));
      p += nb;
    }
    st(d, s, lanes);
  }
}
