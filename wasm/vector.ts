// WebAssembly kernels for the vector work of a training step that is neither
// a matrix product nor a cell: the additions of the reduction tree (every
// gradient vector of a micro-shard is added once per tree level), the
// division of the reduced sum by the batch size, and the SGD update. On the
// MLP they were a third of a step in JavaScript (docs/design.md's profile).
// The JS side is src/tensor/wasm-kernels.ts; the reference, which these
// match BIT FOR BIT, is src/tensor/vector.ts.
//
// NOTE (exactness): the reference rounds to float32 after each operation.
// An add of two float32 values done in float64 and rounded is the float32
// add, so addVec adds in float32 (f32x4). A product with a float64 factor
// (the learning rate, 1/n, momentum, weight decay) is NOT a float32 product:
// the reference computes it in float64 and rounds once, so these kernels do
// the same (f64.mul, then f32.demote).

/** out[i] += b[i], i < n (float32 adds). */
export function addVec(out: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const o = out + <usize>(i << 2), p = b + <usize>(i << 2);
    v128.store(o, f32x4.add(v128.load(o), v128.load(p)));
    v128.store(o, f32x4.add(v128.load(o, 16), v128.load(p, 16)), 16);
    v128.store(o, f32x4.add(v128.load(o, 32), v128.load(p, 32)), 32);
    v128.store(o, f32x4.add(v128.load(o, 48), v128.load(p, 48)), 48);
  }
  for (; i + 4 <= n; i += 4) {
    const o = out + <usize>(i << 2);
    v128.store(o, f32x4.add(v128.load(o), v128.load(b + <usize>(i << 2))));
  }
  for (; i < n; i++) {
    const o = out + <usize>(i << 2);
    store<f32>(o, load<f32>(o) + load<f32>(b + <usize>(i << 2)));
  }
}

/** float32(v[j] * s) per lane, v four float32 and s a float64 splat: the product in float64, rounded once. */
@inline function mulRound(v: v128, s2: v128): v128 {
  // demote writes lanes 0-1 and zeroes 2-3: the halves are put back together.
  const lo = f64x2.mul(f64x2.promote_low_f32x4(v), s2);
  const hi = f64x2.mul(f64x2.promote_low_f32x4(i32x4.shuffle(v, v, 2, 3, 0, 1)), s2);
  return i32x4.shuffle(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}

/** x[i] = float32(x[i] * s) with s a float64, i < n. */
export function scaleVec(x: usize, n: i32, s: f64): void {
  const s2 = f64x2.splat(s);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const p = x + <usize>(i << 2);
    v128.store(p, mulRound(v128.load(p), s2));
  }
  for (; i < n; i++) {
    const p = x + <usize>(i << 2);
    store<f32>(p, <f32>(<f64>load<f32>(p) * s));
  }
}

/**
 * SGD on params[0, n) with the mean gradient g (PyTorch's formulas, as
 * src/optim/sgd.ts): with decay, g += wd * w; with momentum (mu > 0),
 * v = mu * v + g and step = nesterov ? g + mu * v : v; w -= lr * step.
 * vel is unused without momentum. Four elements at a time, each lane the
 * scalar tail's chain of roundings (so the bits do not depend on n).
 */
export function sgdUpdate(params: usize, grad: usize, vel: usize, n: i32,
  lr: f64, mu: f64, wd: f64, nesterov: i32, decay: i32): void {
  const lr2 = f64x2.splat(lr), mu2 = f64x2.splat(mu), wd2 = f64x2.splat(wd);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>(i << 2);
    const w = v128.load(params + o);
    let g = v128.load(grad + o);
    if (decay) g = f32x4.add(g, mulRound(w, wd2));
    let step = g;
    if (mu != 0) {
      const v = f32x4.add(mulRound(v128.load(vel + o), mu2), g);
      v128.store(vel + o, v);
      step = nesterov ? f32x4.add(g, mulRound(v, mu2)) : v;
    }
    v128.store(params + o, f32x4.sub(w, mulRound(step, lr2)));
  }
  for (; i < n; i++) {
    const o = <usize>(i << 2);
    const w = load<f32>(params + o);
    let g = load<f32>(grad + o);
    if (decay) g = g + <f32>(wd * <f64>w);
    let step = g;
    if (mu != 0) {
      const v = <f32>(mu * <f64>load<f32>(vel + o)) + g;
      store<f32>(vel + o, v);
      step = nesterov ? g + <f32>(mu * <f64>v) : v;
    }
    store<f32>(params + o, w - <f32>(lr * <f64>step));
  }
}

/** y[i] = x[i] > 0 ? x[i] : +0, i < n (a NaN gives +0, as the reference's comparison). */
export function reluForward(y: usize, x: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>(i << 2);
    const v = v128.load(x + o);
    v128.store(y + o, v128.and(v, f32x4.gt(v, zero)));
  }
  for (; i < n; i++) {
    const o = <usize>(i << 2);
    const v = load<f32>(x + o);
    store<f32>(y + o, v > 0 ? v : 0);
  }
}

/** dx[i] = y[i] > 0 ? dy[i] : +0, i < n (relu'(0) = 0). */
export function reluBackward(dx: usize, dy: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>(i << 2);
    v128.store(dx + o, v128.and(v128.load(dy + o), f32x4.gt(v128.load(y + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>(i << 2);
    store<f32>(dx + o, load<f32>(y + o) > 0 ? load<f32>(dy + o) : 0);
  }
}
