// L1 and L2 weight penalties and their gradients (the fixtures' README, section 5).
//
//   L1: penalty = lambda * sum_i |w_i|,   dpenalty/dw_i = lambda * sign(w_i), 0 at w_i == 0
//   L2: penalty = lambda * sum_i w_i^2,   dpenalty/dw_i = 2 * lambda * w_i   (NO 1/2 factor)
//
// w is any flat view (a layer's weights inside the model's one parameter
// buffer). Penalties are summed in float64 and multiplied by lambda once;
// gradients are computed in float64 (lambda is a float64 constant such as
// 0.01, not float32-exact) and ADDED to g with one rounding per entry.
// Applied by the coordinator to the mean gradient, after the reduction:
// the penalty belongs to the batch, not to any micro-shard.

/** lambda * sum_i |w_i|. */
export function l1Penalty(w: ArrayLike<number>, lambda: number): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += Math.abs(w[i]);
  return lambda * s;
}

/** lambda * sum_i w_i^2 (no 1/2 factor). */
export function l2Penalty(w: ArrayLike<number>, lambda: number): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += w[i] * w[i];
  return lambda * s;
}

/** g += lambda * sign(w), with sign(0) = 0 (NOTE: the subgradient at the kink is 0). */
export function addL1Grad(w: ArrayLike<number>, lambda: number, g: Float32Array | Float64Array): void {
  checkLengths('addL1Grad', w, g);
  for (let i = 0; i < w.length; i++) {
    const x = w[i];
    if (x > 0) g[i] = g[i] + lambda;
    else if (x < 0) g[i] = g[i] - lambda;
  }
}

/** g += 2 * lambda * w. */
export function addL2Grad(w: ArrayLike<number>, lambda: number, g: Float32Array | Float64Array): void {
  checkLengths('addL2Grad', w, g);
  const k = 2 * lambda;
  for (let i = 0; i < w.length; i++) g[i] = g[i] + k * w[i];
}

function checkLengths(fn: string, w: ArrayLike<number>, g: ArrayLike<number>): void {
  if (g.length !== w.length) throw new RangeError(`${fn}: g has ${g.length} entries, w has ${w.length}; pass views of the same size`);
}
