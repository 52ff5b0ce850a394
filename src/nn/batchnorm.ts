// Batch normalization over the LAST axis (PyTorch BatchNorm1d semantics).
//
// Dimension letters:
//   B  samples in the buffer (one micro-shard: ghost batch norm, docs/design.md 4)
//   R  rows = B times the product of the leading per-sample dims, so an
//      input [T, F] normalizes over batch AND time, like a per-feature BN
//   F  features (last axis)
//
// Training: normalize with the batch mean and BIASED variance of the R rows;
// the running estimate receives the UNBIASED variance (PyTorch). Evaluation:
// normalize with the running statistics. The running statistics are not
// written here: the layer adds B * statistic into ds and the trainer applies
// s = (1 - m) s + m (reduced ds / N) after the fixed-order reduction.
import { dptError, fmtShape } from '../errors.js';
import type { BatchNormSpec } from '../model/spec.js';
import { sizeOf, Workspace, type Layer, type ParamSpec, type StatSpec, checkForwardInput } from './layer.js';

/**
 * Training forward. Outputs y (R, F), xhat (R, F), and per feature mean,
 * varBiased and rstd = 1/sqrt(varBiased + eps) (F, float64).
 */
export function batchNormTrainForward(
  y: Float32Array, xhat: Float32Array, mean: Float64Array, varBiased: Float64Array, rstd: Float64Array,
  x: Float32Array, gamma: Float32Array, beta: Float32Array, R: number, F: number, eps: number,
): void {
  // NOTE: two passes in float64 (mean first, then the mean of squared
  // deviations). The one-pass E[x^2] - E[x]^2 cancels catastrophically for a
  // large offset and gives a nonzero variance for a constant column (the
  // fixture's edge case; PyTorch's own float32 kernel returns 3e-5 there).
  mean.fill(0, 0, F);
  varBiased.fill(0, 0, F);
  for (let r = 0; r < R; r++) for (let f = 0; f < F; f++) mean[f] += x[r * F + f];
  for (let f = 0; f < F; f++) mean[f] /= R;
  for (let r = 0; r < R; r++) {
    for (let f = 0; f < F; f++) {
      const d = x[r * F + f] - mean[f];
      varBiased[f] += d * d;
    }
  }
  for (let f = 0; f < F; f++) {
    varBiased[f] /= R;
    rstd[f] = 1 / Math.sqrt(varBiased[f] + eps);
  }
  normalize(y, xhat, x, mean, rstd, gamma, beta, R, F);
}

/** Evaluation forward: as training, with the running statistics in place of the batch's. */
export function batchNormEvalForward(
  y: Float32Array, xhat: Float32Array, rstd: Float64Array,
  x: Float32Array, gamma: Float32Array, beta: Float32Array,
  runningMean: ArrayLike<number>, runningVar: ArrayLike<number>, R: number, F: number, eps: number,
): void {
  for (let f = 0; f < F; f++) rstd[f] = 1 / Math.sqrt(runningVar[f] + eps);
  normalize(y, xhat, x, runningMean, rstd, gamma, beta, R, F);
}

/** xhat = (x - mean) rstd, y = gamma xhat + beta (y from the float64 xhat). */
function normalize(
  y: Float32Array, xhat: Float32Array, x: Float32Array, mean: ArrayLike<number>, rstd: Float64Array,
  gamma: Float32Array, beta: Float32Array, R: number, F: number,
): void {
  for (let r = 0; r < R; r++) {
    const o = r * F;
    for (let f = 0; f < F; f++) {
      const xh = (x[o + f] - mean[f]) * rstd[f];
      xhat[o + f] = xh;
      y[o + f] = gamma[f] * xh + beta[f];
    }
  }
}

/**
 * Training backward: the gradient flows through the batch mean and variance.
 *   dx = gamma rstd / R (R G - sum_r G - xhat sum_r(G xhat))   (overwrites; skipped when dx is null)
 *   dgamma += sum_r G xhat,  dbeta += sum_r G                     (accumulate)
 */
export function batchNormTrainBackward(
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
  dy: Float32Array, xhat: Float32Array, gamma: Float32Array, rstd: Float64Array, R: number, F: number,
): void {
  // Feature-outer so the two sums stay in float64 scalars.
  for (let f = 0; f < F; f++) {
    let sumG = 0, sumGx = 0;
    for (let r = 0; r < R; r++) {
      const G = dy[r * F + f];
      sumG += G;
      sumGx += G * xhat[r * F + f];
    }
    dgamma[f] += sumGx;
    dbeta[f] += sumG;
    if (dx === null) continue;
    const k = (gamma[f] * rstd[f]) / R;
    for (let r = 0; r < R; r++) {
      const i = r * F + f;
      dx[i] = k * (R * dy[i] - sumG - xhat[i] * sumGx);
    }
  }
}

/** Evaluation backward: a fixed affine map, dx = G gamma rstd. */
export function batchNormEvalBackward(
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
  dy: Float32Array, xhat: Float32Array, gamma: Float32Array, rstd: Float64Array, R: number, F: number,
): void {
  for (let f = 0; f < F; f++) {
    let sumG = 0, sumGx = 0;
    for (let r = 0; r < R; r++) {
      sumG += dy[r * F + f];
      sumGx += dy[r * F + f] * xhat[r * F + f];
    }
    dgamma[f] += sumGx;
    dbeta[f] += sumG;
    if (dx === null) continue;
    const k = gamma[f] * rstd[f];
    for (let r = 0; r < R; r++) dx[r * F + f] = dy[r * F + f] * k;
  }
}

/**
 * varUnbiased = varBiased * R / (R - 1).
 * NOTE: with R = 1 the unbiased variance is 0/0 (PyTorch refuses to train
 * then). We return 0: one row carries no spread information, and 0 keeps
 * NaN out of the running estimate (it does pull running_var toward 0, so
 * keep micro-shards larger than one row when training with batch norm).
 */
export function unbiasedVariance(varUnbiased: Float64Array, varBiased: ArrayLike<number>, R: number, F: number): void {
  for (let f = 0; f < F; f++) varUnbiased[f] = R > 1 ? (varBiased[f] * R) / (R - 1) : 0;
}

/** out = (1 - momentum) running + momentum stat (PyTorch: momentum weights the NEW value). */
export function runningUpdate(out: Float64Array | Float32Array, running: ArrayLike<number>, stat: ArrayLike<number>, momentum: number, F: number): void {
  for (let f = 0; f < F; f++) out[f] = (1 - momentum) * running[f] + momentum * stat[f];
}

const EMPTY = new Float32Array(0);

export function createBatchNorm(index: number, inShape: readonly number[], spec: BatchNormSpec): Layer {
  const where = `layers[${index}] (batchnorm)`;
  if (inShape.length < 1) {
    throw dptError('DPT_ERR_SHAPE', `${where}: expected an input of rank >= 1, got ${fmtShape(inShape)}`);
  }
  if (inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: input dims must be positive integers, got ${fmtShape(inShape)}`);
  }
  const F = inShape[inShape.length - 1];
  const T = sizeOf(inShape) / F; // rows per sample
  const eps = spec.eps ?? 1e-5;
  const momentum = spec.momentum ?? 0.1;
  const params: ParamSpec[] = [
    { name: 'gamma', shape: [F], init: 'ones', fanIn: F, fanOut: F, decay: false },
    { name: 'beta', shape: [F], init: 'zeros', fanIn: F, fanOut: F, decay: false },
  ];
  const stats: StatSpec[] = [
    { name: 'running_mean', shape: [F], init: 'zeros', momentum },
    { name: 'running_var', shape: [F], init: 'ones', momentum },
  ];

  // Views bound into the model's flat buffers, all (F).
  let gamma: Float32Array = EMPTY, beta: Float32Array = EMPTY;
  let dgamma: Float32Array = EMPTY, dbeta: Float32Array = EMPTY;
  let runMean: Float32Array = EMPTY, runVar: Float32Array = EMPTY;
  let dsMean: Float32Array = EMPTY, dsVar: Float32Array = EMPTY;
  const mean = new Float64Array(F);        // (F) batch mean
  const varBiased = new Float64Array(F);   // (F) batch variance, biased
  const varUnbiased = new Float64Array(F); // (F)
  const rstd = new Float64Array(F);        // (F) 1/sqrt(var + eps), batch or running
  const y = new Workspace();               // (R, F)
  const xhat = new Workspace();            // (R, F) kept for backward
  const dx = new Workspace();              // (R, F)
  let xh = xhat.get(0);
  let rows = 0;                            // R of the last forward
  let trained = false;                     // mode of the last forward

  return {
    type: 'batchnorm',
    index,
    inShape: [...inShape],
    outShape: [...inShape],
    params,
    stats,
    bind(p, g, s, ds) {
      for (let i = 0; i < 2; i++) {
        if (p[i]?.length !== F || g[i]?.length !== F || s[i]?.length !== F || ds[i]?.length !== F) {
          throw dptError('DPT_ERR_SHAPE', `${where}: ${params[i].name} / ${stats[i].name} views must hold ${F} floats`);
        }
      }
      gamma = p[0]; beta = p[1]; dgamma = g[0]; dbeta = g[1];
      runMean = s[0]; runVar = s[1]; dsMean = ds[0]; dsVar = ds[1];
    },
    forward(x, batch, ctx) {
      rows = batch * T;
      checkForwardInput(where, x, rows * F, batch, inShape);
      const out = y.get(rows * F);
      xh = xhat.get(rows * F);
      trained = ctx.training;
      if (!trained) {
        batchNormEvalForward(out, xh, rstd, x, gamma, beta, runMean, runVar, rows, F, eps);
        return out;
      }
      batchNormTrainForward(out, xh, mean, varBiased, rstd, x, gamma, beta, rows, F, eps);
      unbiasedVariance(varUnbiased, varBiased, rows, F);
      // NOTE: weighted by samples B, not rows R: the trainer divides the
      // reduced sum by the number of SAMPLES N in the global batch. For a
      // flat input R = B; for [T, F] every micro-shard's statistic is over
      // B*T rows but counts as B samples, so sum(B_k stat_k) / N is the
      // sample-weighted mean of the micro-shard statistics.
      for (let f = 0; f < F; f++) {
        dsMean[f] += batch * mean[f];
        dsVar[f] += batch * varUnbiased[f];
      }
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch * T !== rows || dy.length < rows * F) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${rows} rows of ${F})`);
      }
      const din = needDx ? dx.get(rows * F) : null;
      if (trained) batchNormTrainBackward(din, dgamma, dbeta, dy, xh, gamma, rstd, rows, F);
      else batchNormEvalBackward(din, dgamma, dbeta, dy, xh, gamma, rstd, rows, F);
      return din;
    },
  };
}
