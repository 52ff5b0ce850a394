// Central finite differences, to check every layer's and loss's backward pass
// against its forward pass (used by the tests of every layer and loss).
//
// NOTE: the core computes in float32, so a difference quotient carries
// rounding noise of about eps_f32 * |f| / h. Use a step h near 1e-2..1e-3
// and compare with a mixed tolerance, and evaluate f in float64 where you
// can (e.g. the loss sum(y * G) summed in a JS number).

export interface GradCheckOptions {
  /** Finite-difference step. */
  h?: number;
  /** Mixed tolerance |a - n| <= atol + rtol * max(|a|, |n|). */
  rtol?: number;
  atol?: number;
  /** Check at most this many coordinates (spread evenly), to keep tests fast. */
  maxChecks?: number;
}

export interface GradCheckResult {
  ok: boolean;
  /** Largest |analytic - numeric| / (atol + rtol * max(|a|, |n|)); <= 1 passes. */
  worstRatio: number;
  worstIndex: number;
  analytic: number;
  numeric: number;
  checked: number;
}

/**
 * Compares `analytic` (dLoss/dx as computed by backward) with central
 * differences of `loss()` with respect to `x`, perturbing x in place and
 * restoring it.
 */
export function gradCheck(
  loss: () => number,
  x: Float32Array,
  analytic: ArrayLike<number>,
  options: GradCheckOptions = {},
): GradCheckResult {
  const h = options.h ?? 1e-2;
  const rtol = options.rtol ?? 2e-2;
  const atol = options.atol ?? 2e-3;
  const maxChecks = options.maxChecks ?? 64;
  const stride = Math.max(1, Math.floor(x.length / maxChecks));
  const result: GradCheckResult = { ok: true, worstRatio: 0, worstIndex: -1, analytic: 0, numeric: 0, checked: 0 };
  for (let i = 0; i < x.length; i += stride) {
    const saved = x[i];
    x[i] = saved + h;
    const up = loss();
    x[i] = saved - h;
    const down = loss();
    x[i] = saved;
    // The perturbation actually applied, after float32 rounding.
    const step = Math.fround(saved + h) - Math.fround(saved - h);
    const numeric = (up - down) / step;
    const a = analytic[i];
    const ratio = Math.abs(a - numeric) / (atol + rtol * Math.max(Math.abs(a), Math.abs(numeric)));
    result.checked++;
    if (ratio > result.worstRatio) {
      result.worstRatio = ratio;
      result.worstIndex = i;
      result.analytic = a;
      result.numeric = numeric;
    }
  }
  result.ok = result.worstRatio <= 1;
  return result;
}

/** sum(y * G) in float64: the scalar whose gradient with respect to y is G. */
export function dotLoss(y: ArrayLike<number>, g: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += y[i] * g[i];
  return s;
}
