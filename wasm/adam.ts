// WebAssembly Adam / AdamW update for dptrain (AssemblyScript). The JS side
// is src/tensor/wasm-adam.ts; the reference, which this matches BIT FOR BIT,
// is tsVector.adamRange in src/tensor/vector.ts (the formulas:
// src/optim/adam.ts). Each element is computed in float64 from its float32
// w, g, m and v, two elements per f64x2, one IEEE operation at a time in
// the reference's order (no fused multiply-add), and w, m, v are rounded
// once when stored.

// Two elements (f64x2 lanes) of the update; returns (w', m', v') through the globals below.
let outW = f64x2.splat(0), outM = f64x2.splat(0), outV = f64x2.splat(0);

@inline
function update2(w0: v128, g0: v128, m0: v128, v0: v128,
  b1: v128, c1: v128, b2: v128, c2: v128, stepSize: v128, sqrtBc2: v128, eps: v128,
  wd: v128, shrink: v128, decoupled: bool, decay: bool): void {
  let w = w0, g = g0;
  if (decay) {
    if (decoupled) w = f64x2.mul(w, shrink);
    else g = f64x2.add(g, f64x2.mul(wd, w));
  }
  const m = f64x2.add(f64x2.mul(b1, m0), f64x2.mul(c1, g));
  const v = f64x2.add(f64x2.mul(b2, v0), f64x2.mul(f64x2.mul(c2, g), g));
  const denom = f64x2.add(f64x2.div(f64x2.sqrt(v), sqrtBc2), eps);
  outW = f64x2.sub(w, f64x2.div(f64x2.mul(stepSize, m), denom));
  outM = m;
  outV = v;
}

// Four float32 at p as two f64x2 (lanes 0-1, lanes 2-3).
@inline function lo(x: v128): v128 { return f64x2.promote_low_f32x4(x); }
@inline function hi(x: v128): v128 { return f64x2.promote_low_f32x4(i32x4.shuffle(x, x, 2, 3, 0, 1)); }
// Two f64x2 back to four float32, each rounded once.
@inline function join(a: v128, b: v128): v128 {
  return i32x4.shuffle(f32x4.demote_f64x2_zero(a), f32x4.demote_f64x2_zero(b), 0, 1, 4, 5);
}

/** Adam / AdamW on params[0, n) (grad, m, v alike); see tsVector.adamRange. */
export function adamUpdate(params: usize, grad: usize, m: usize, v: usize, n: i32,
  b1: f64, b2: f64, stepSize: f64, sqrtBc2: f64, eps: f64, wd: f64, shrink: f64, decoupled: i32, decay: i32): void {
  const B1 = f64x2.splat(b1), C1 = f64x2.splat(1 - b1), B2 = f64x2.splat(b2), C2 = f64x2.splat(1 - b2);
  const S = f64x2.splat(stepSize), Q = f64x2.splat(sqrtBc2), E = f64x2.splat(eps);
  const WD = f64x2.splat(wd), SH = f64x2.splat(shrink);
  const dec = decoupled != 0, dcy = decay != 0;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>(i << 2);
    const w = v128.load(params + o), g = v128.load(grad + o), mm = v128.load(m + o), vv = v128.load(v + o);
    update2(lo(w), lo(g), lo(mm), lo(vv), B1, C1, B2, C2, S, Q, E, WD, SH, dec, dcy);
    const w1 = outW, m1 = outM, v1 = outV;
    update2(hi(w), hi(g), hi(mm), hi(vv), B1, C1, B2, C2, S, Q, E, WD, SH, dec, dcy);
    v128.store(params + o, join(w1, outW));
    v128.store(m + o, join(m1, outM));
    v128.store(v + o, join(v1, outV));
  }
  const c1 = 1 - b1, c2 = 1 - b2;
  for (; i < n; i++) {
    const o = <usize>(i << 2);
    let w = <f64>load<f32>(params + o);
    let g = <f64>load<f32>(grad + o);
    if (dcy) {
      if (dec) w = w * shrink;
      else g = g + wd * w;
    }
    const mi = b1 * <f64>load<f32>(m + o) + c1 * g;
    const vi = b2 * <f64>load<f32>(v + o) + c2 * g * g;
    store<f32>(m + o, <f32>mi);
    store<f32>(v + o, <f32>vi);
    store<f32>(params + o, <f32>(w - stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps)));
  }
}
