// WebAssembly SIMD loops of batch normalization for dptrain (AssemblyScript).
// The JS side is src/tensor/wasm-norm.ts; the reference, which these match
// BIT FOR BIT, is tsNorm in src/tensor/norm.ts (its header states the
// contract). A buffer is x (N, C, S): row (n, c) holds the S positions of
// channel c of sample n, at float index (n * C + c) * S. Per-channel values
// (mean, rstd, k, the sums) are float64 arrays of C; gamma and beta float32.
//
// A channel's sum runs in eight float64 lanes, lane l taking the positions
// s = l (mod 8): four f64x2 accumulators (lanes 0-1, 2-3, 4-5, 6-7), eight
// floats of a row at a time, kept in locals; a row's last S mod 8 values
// are added into their lanes one by one through LANES in memory. The sum is
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). Everything else is
// elementwise: float64 from the float32 operands, one IEEE operation at a
// time in the reference's order (no fused multiply-add), rounded once when
// stored.

// Four float32 as two f64x2: positions 0-1, positions 2-3.
@inline function lo(v: v128): v128 { return f64x2.promote_low_f32x4(v); }
@inline function hi(v: v128): v128 { return f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)); }
// Two f64x2 back to four float32, each rounded once.
@inline function join(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}
@inline function rowAt(p: usize, n: i32, c: i32, C: i32, S: i32): usize {
  return p + ((<usize>n * <usize>C + <usize>c) * <usize>S << 2);
}
@inline function f32At(p: usize, s: i32): f64 { return <f64>load<f32>(p + (<usize>s << 2)); }
@inline function pairSum(a: v128): f64 { return f64x2.extract_lane(a, 0) + f64x2.extract_lane(a, 1); }
@inline function laneTotal(a0: v128, a1: v128, a2: v128, a3: v128): f64 {
  return (pairSum(a0) + pairSum(a1)) + (pairSum(a2) + pairSum(a3));
}

// Two sets of eight float64 lanes (a row's tail is added here, lane by lane).
const LANES: usize = memory.data(128, 16);
@inline function spill(at: usize, a0: v128, a1: v128, a2: v128, a3: v128): void {
  v128.store(at, a0); v128.store(at, a1, 16); v128.store(at, a2, 32); v128.store(at, a3, 48);
}
@inline function laneAdd(at: usize, j: i32, v: f64): void {
  const p = at + (<usize>j << 3);
  store<f64>(p, load<f64>(p) + v);
}

/** mean[c] = sum x / M, varBiased[c] = sum (x - mean)^2 / M over channel c of x (N, C, S). */
export function bnMoments(mean: usize, varBiased: usize, x: usize, N: i32, C: i32, S: i32): void {
  const M = <f64>N * <f64>S;
  const T = S & ~7; // positions before a row's tail
  for (let c = 0; c < C; c++) {
    let a0 = f64x2.splat(0), a1 = a0, a2 = a0, a3 = a0;
    for (let n = 0; n < N; n++) {
      const row = rowAt(x, n, c, C, S);
      for (let s = 0; s < T; s += 8) {
        const p = row + (<usize>s << 2);
        const v = v128.load(p), w = v128.load(p, 16);
        a0 = f64x2.add(a0, lo(v)); a1 = f64x2.add(a1, hi(v));
        a2 = f64x2.add(a2, lo(w)); a3 = f64x2.add(a3, hi(w));
      }
      if (T < S) {
        spill(LANES, a0, a1, a2, a3);
        for (let s = T; s < S; s++) laneAdd(LANES, s - T, f32At(row, s));
        a0 = v128.load(LANES); a1 = v128.load(LANES, 16); a2 = v128.load(LANES, 32); a3 = v128.load(LANES, 48);
      }
    }
    const mu = laneTotal(a0, a1, a2, a3) / M;
    const MU = f64x2.splat(mu);
    a0 = f64x2.splat(0); a1 = a0; a2 = a0; a3 = a0;
    for (let n = 0; n < N; n++) {
      const row = rowAt(x, n, c, C, S);
      for (let s = 0; s < T; s += 8) {
        const p = row + (<usize>s << 2);
        const v = v128.load(p), w = v128.load(p, 16);
        const d0 = f64x2.sub(lo(v), MU), d1 = f64x2.sub(hi(v), MU), d2 = f64x2.sub(lo(w), MU), d3 = f64x2.sub(hi(w), MU);
        a0 = f64x2.add(a0, f64x2.mul(d0, d0)); a1 = f64x2.add(a1, f64x2.mul(d1, d1));
        a2 = f64x2.add(a2, f64x2.mul(d2, d2)); a3 = f64x2.add(a3, f64x2.mul(d3, d3));
      }
      if (T < S) {
        spill(LANES, a0, a1, a2, a3);
        for (let s = T; s < S; s++) {
          const d = f32At(row, s) - mu;
          laneAdd(LANES, s - T, d * d);
        }
        a0 = v128.load(LANES); a1 = v128.load(LANES, 16); a2 = v128.load(LANES, 32); a3 = v128.load(LANES, 48);
      }
    }
    store<f64>(mean + (<usize>c << 3), mu);
    store<f64>(varBiased + (<usize>c << 3), laneTotal(a0, a1, a2, a3) / M);
  }
}

/** xh = (x - mean) rstd, xhat = f(xh), y = f(gamma xh + beta), per channel. */
export function bnNormalize(y: usize, xhat: usize, x: usize, mean: usize, rstd: usize, gamma: usize, beta: usize,
  N: i32, C: i32, S: i32): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const mu = load<f64>(mean + (<usize>c << 3)), r = load<f64>(rstd + (<usize>c << 3));
      const g = <f64>load<f32>(gamma + (<usize>c << 2)), b = <f64>load<f32>(beta + (<usize>c << 2));
      const MU = f64x2.splat(mu), R = f64x2.splat(r), G = f64x2.splat(g), Bt = f64x2.splat(b);
      const xr = rowAt(x, n, c, C, S), hr = rowAt(xhat, n, c, C, S), yr = rowAt(y, n, c, C, S);
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const o = <usize>s << 2;
        const v = v128.load(xr + o);
        const h0 = f64x2.mul(f64x2.sub(lo(v), MU), R), h1 = f64x2.mul(f64x2.sub(hi(v), MU), R);
        v128.store(hr + o, join(h0, h1));
        v128.store(yr + o, join(f64x2.add(f64x2.mul(G, h0), Bt), f64x2.add(f64x2.mul(G, h1), Bt)));
      }
      for (; s < S; s++) {
        const o = <usize>s << 2;
        const h = (<f64>load<f32>(xr + o) - mu) * r;
        store<f32>(hr + o, <f32>h);
        store<f32>(yr + o, <f32>(g * h + b));
      }
    }
  }
}

/** sumG[c] = sum dy, sumGx[c] = sum dy xhat, per channel. */
export function bnGradSums(sumG: usize, sumGx: usize, dy: usize, xhat: usize, N: i32, C: i32, S: i32): void {
  const T = S & ~7;
  const LB = LANES + 64;
  for (let c = 0; c < C; c++) {
    let a0 = f64x2.splat(0), a1 = a0, a2 = a0, a3 = a0; // sum dy
    let b0 = a0, b1 = a0, b2 = a0, b3 = a0;              // sum dy xhat
    for (let n = 0; n < N; n++) {
      const gr = rowAt(dy, n, c, C, S), hr = rowAt(xhat, n, c, C, S);
      for (let s = 0; s < T; s += 8) {
        const o = <usize>s << 2;
        const g = v128.load(gr + o), g4 = v128.load(gr + o, 16);
        const h = v128.load(hr + o), h4 = v128.load(hr + o, 16);
        const g0 = lo(g), g1 = hi(g), g2 = lo(g4), g3 = hi(g4);
        a0 = f64x2.add(a0, g0); a1 = f64x2.add(a1, g1); a2 = f64x2.add(a2, g2); a3 = f64x2.add(a3, g3);
        b0 = f64x2.add(b0, f64x2.mul(g0, lo(h))); b1 = f64x2.add(b1, f64x2.mul(g1, hi(h)));
        b2 = f64x2.add(b2, f64x2.mul(g2, lo(h4))); b3 = f64x2.add(b3, f64x2.mul(g3, hi(h4)));
      }
      if (T < S) {
        spill(LANES, a0, a1, a2, a3);
        spill(LB, b0, b1, b2, b3);
        for (let s = T; s < S; s++) {
          const g = f32At(gr, s);
          laneAdd(LANES, s - T, g);
          laneAdd(LB, s - T, g * f32At(hr, s));
        }
        a0 = v128.load(LANES); a1 = v128.load(LANES, 16); a2 = v128.load(LANES, 32); a3 = v128.load(LANES, 48);
        b0 = v128.load(LB); b1 = v128.load(LB, 16); b2 = v128.load(LB, 32); b3 = v128.load(LB, 48);
      }
    }
    store<f64>(sumG + (<usize>c << 3), laneTotal(a0, a1, a2, a3));
    store<f64>(sumGx + (<usize>c << 3), laneTotal(b0, b1, b2, b3));
  }
}

/** dx = f(k ((M dy - sumG) - xhat sumGx)) per channel, M = N * S. */
export function bnTrainInputGrad(dx: usize, dy: usize, xhat: usize, k: usize, sumG: usize, sumGx: usize,
  N: i32, C: i32, S: i32): void {
  const m = <f64>N * <f64>S;
  const M = f64x2.splat(m);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const kc = load<f64>(k + (<usize>c << 3)), sg = load<f64>(sumG + (<usize>c << 3)), sgx = load<f64>(sumGx + (<usize>c << 3));
      const K = f64x2.splat(kc), SG = f64x2.splat(sg), SGX = f64x2.splat(sgx);
      const dr = rowAt(dx, n, c, C, S), gr = rowAt(dy, n, c, C, S), hr = rowAt(xhat, n, c, C, S);
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const o = <usize>s << 2;
        const g = v128.load(gr + o), h = v128.load(hr + o);
        const r0 = f64x2.mul(K, f64x2.sub(f64x2.sub(f64x2.mul(M, lo(g)), SG), f64x2.mul(lo(h), SGX)));
        const r1 = f64x2.mul(K, f64x2.sub(f64x2.sub(f64x2.mul(M, hi(g)), SG), f64x2.mul(hi(h), SGX)));
        v128.store(dr + o, join(r0, r1));
      }
      for (; s < S; s++) {
        const o = <usize>s << 2;
        store<f32>(dr + o, <f32>(kc * (m * <f64>load<f32>(gr + o) - sg - <f64>load<f32>(hr + o) * sgx)));
      }
    }
  }
}

/** dx = f(dy k) per channel. */
export function bnEvalInputGrad(dx: usize, dy: usize, k: usize, N: i32, C: i32, S: i32): void {
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const kc = load<f64>(k + (<usize>c << 3));
      const K = f64x2.splat(kc);
      const dr = rowAt(dx, n, c, C, S), gr = rowAt(dy, n, c, C, S);
      let s = 0;
      for (; s + 4 <= S; s += 4) {
        const o = <usize>s << 2;
        const g = v128.load(gr + o);
        v128.store(dr + o, join(f64x2.mul(lo(g), K), f64x2.mul(hi(g), K)));
      }
      for (; s < S; s++) {
        const o = <usize>s << 2;
        store<f32>(dr + o, <f32>(<f64>load<f32>(gr + o) * kc));
      }
    }
  }
}
