// Batch normalization (PyTorch's BatchNorm1d, BatchNorm2d, BatchNorm3d).
//
// Dimension letters: the layer sees a buffer as x (N, C, S) and keeps one
// mean, variance, gamma and beta per channel c, statistics over the
// M = N * S values x[:, c, :]:
//   C  the normalized axis (spec.axis: the first per-sample axis, 'channels',
//      or the last one, 'last')
//   N  the samples B of the buffer (one micro-shard: ghost batch norm,
//      docs/design.md 4) times the per-sample axes before C
//   S  the per-sample axes after C (H * W of an image)
// So [F] is (B, F, 1), BatchNorm1d; a sequence [T, F] on its last axis is
// (B*T, F, 1), a per-feature BN over batch and time; an image [C, H, W] on
// its channels is (B, C, H*W), BatchNorm2d.
//
// Training: normalize with the batch mean and BIASED variance of the M
// values; the running estimate receives the UNBIASED variance (PyTorch).
// Evaluation: normalize with the running statistics. The running statistics
// are not written here: the layer adds B * statistic into ds and the trainer
// applies s = (1 - m) s + m (reduced ds / N) after the fixed-order reduction.
//
// The loops are the norm kernels' (src/tensor/norm.ts: a TypeScript
// reference and WebAssembly SIMD, the same bits). NOTE (bits): every sum
// over a channel runs in float64 in a fixed order (norm.ts); with S = 1 it
// is the plain sum in order the last-axis layer always had, so flat and
// sequence models keep their bits.
import { dptError, fmtShape } from '../errors.js';
import type { BatchNormSpec } from '../model/spec.js';
import { normKernels } from '../tensor/norm.js';
import { sizeOf, Workspace, type Layer, type ParamSpec, type StatSpec, checkForwardInput } from './layer.js';

/**
 * Training forward. Outputs y (N, C, S), xhat (N, C, S), and per channel
 * mean, varBiased and rstd = 1/sqrt(varBiased + eps) (C, float64).
 */
export function batchNormTrainForward(
  y: Float32Array, xhat: Float32Array, mean: Float64Array, varBiased: Float64Array, rstd: Float64Array,
  x: Float32Array, gamma: Float32Array, beta: Float32Array, N: number, C: number, S: number, eps: number,
): void {
  // NOTE: two passes in float64 (mean first, then the mean of squared
  // deviations). The one-pass E[x^2] - E[x]^2 cancels catastrophically for a
  // large offset and gives a nonzero variance for a constant channel (the
  // fixtures' edge cases; PyTorch's own float32 kernel returns 3e-5 there).
  const k = normKernels();
  k.moments(mean, varBiased, x, N, C, S);
  for (let c = 0; c < C; c++) rstd[c] = 1 / Math.sqrt(varBiased[c] + eps);
  k.normalize(y, xhat, x, mean, rstd, gamma, beta, N, C, S);
}

/** Evaluation forward: as training, with the running statistics in place of the batch's. */
export function batchNormEvalForward(
  y: Float32Array, xhat: Float32Array, rstd: Float64Array,
  x: Float32Array, gamma: Float32Array, beta: Float32Array,
  runningMean: ArrayLike<number>, runningVar: ArrayLike<number>, N: number, C: number, S: number, eps: number,
): void {
  for (let c = 0; c < C; c++) rstd[c] = 1 / Math.sqrt(runningVar[c] + eps);
  normKernels().normalize(y, xhat, x, runningMean, rstd, gamma, beta, N, C, S);
}

/** Per-channel scratch of the backward passes (C, float64), grown as needed. */
class ChannelScratch {
  sumG = new Float64Array(0);
  sumGx = new Float64Array(0);
  k = new Float64Array(0);
  ensure(C: number): this {
    if (this.k.length < C) {
      this.sumG = new Float64Array(C);
      this.sumGx = new Float64Array(C);
      this.k = new Float64Array(C);
    }
    return this;
  }
}
const scratch = new ChannelScratch();

/**
 * Training backward: the gradient flows through the batch mean and variance.
 *   dx = gamma rstd / M (M G - sum G - xhat sum(G xhat))   (overwrites; skipped when dx is null)
 *   dgamma += sum G xhat,  dbeta += sum G                    (accumulate)
 * the sums over the M values of the channel.
 */
export function batchNormTrainBackward(
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
  dy: Float32Array, xhat: Float32Array, gamma: Float32Array, rstd: Float64Array, N: number, C: number, S: number,
): void {
  const { sumG, sumGx, k } = paramGrads(dgamma, dbeta, dy, xhat, gamma, rstd, N, C, S, N * S);
  if (dx !== null) normKernels().trainInputGrad(dx, dy, xhat, k, sumG, sumGx, N, C, S);
}

/** Evaluation backward: a fixed affine map, dx = G gamma rstd. */
export function batchNormEvalBackward(
  dx: Float32Array | null, dgamma: Float32Array, dbeta: Float32Array,
  dy: Float32Array, xhat: Float32Array, gamma: Float32Array, rstd: Float64Array, N: number, C: number, S: number,
): void {
  const { k } = paramGrads(dgamma, dbeta, dy, xhat, gamma, rstd, N, C, S, 1);
  if (dx !== null) normKernels().evalInputGrad(dx, dy, k, N, C, S);
}

/**
 * Both backwards' shared part: the channel sums sum G and sum(G xhat), added
 * into dbeta and dgamma, and k = gamma rstd / divisor per channel (divisor M
 * in training, 1 in evaluation: x / 1 is x, the same bits).
 */
function paramGrads(
  dgamma: Float32Array, dbeta: Float32Array, dy: Float32Array, xhat: Float32Array, gamma: Float32Array, rstd: Float64Array,
  N: number, C: number, S: number, divisor: number,
): ChannelScratch {
  const sc = scratch.ensure(C);
  normKernels().gradSums(sc.sumG, sc.sumGx, dy, xhat, N, C, S);
  for (let c = 0; c < C; c++) {
    dgamma[c] += sc.sumGx[c];
    dbeta[c] += sc.sumG[c];
    sc.k[c] = (gamma[c] * rstd[c]) / divisor;
  }
  return sc;
}

/**
 * varUnbiased = varBiased * M / (M - 1), M the values per channel.
 * NOTE: with M = 1 the unbiased variance is 0/0 (PyTorch refuses to train
 * then). We return 0: one value carries no spread information, and 0 keeps
 * NaN out of the running estimate (it does pull running_var toward 0, so
 * keep micro-shards larger than one sample when training a flat input with
 * batch norm; an image has H * W values per sample and channel).
 */
export function unbiasedVariance(varUnbiased: Float64Array, varBiased: ArrayLike<number>, M: number, C: number): void {
  for (let c = 0; c < C; c++) varUnbiased[c] = M > 1 ? (varBiased[c] * M) / (M - 1) : 0;
}

/** out = (1 - momentum) running + momentum stat (PyTorch: momentum weights the NEW value). */
export function runningUpdate(out: Float64Array | Float32Array, running: ArrayLike<number>, stat: ArrayLike<number>, momentum: number, C: number): void {
  for (let c = 0; c < C; c++) out[c] = (1 - momentum) * running[c] + momentum * stat[c];
}

export type BatchNormAxis = 'channels' | 'last';

/** The axis a batchnorm spec normalizes on inShape: its own, else 'channels' for 3 or more axes (an image), else 'last'. */
export function batchNormAxis(inShape: readonly number[], spec: BatchNormSpec): BatchNormAxis {
  return spec.axis ?? (inShape.length >= 3 ? 'channels' : 'last');
}

/** The per-sample view (lead, C, S) of inShape: lead axes before the normalized one, C, S after it. */
export function batchNormView(inShape: readonly number[], axis: BatchNormAxis): { lead: number; C: number; S: number } {
  const at = axis === 'channels' ? 0 : inShape.length - 1;
  return { lead: sizeOf(inShape.slice(0, at)), C: inShape[at], S: sizeOf(inShape.slice(at + 1)) };
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
  const { lead, C, S } = batchNormView(inShape, batchNormAxis(inShape, spec));
  const E = sizeOf(inShape);
  const eps = spec.eps ?? 1e-5;
  const momentum = spec.momentum ?? 0.1;
  const params: ParamSpec[] = [
    { name: 'gamma', shape: [C], init: 'ones', fanIn: C, fanOut: C, decay: false },
    { name: 'beta', shape: [C], init: 'zeros', fanIn: C, fanOut: C, decay: false },
  ];
  const stats: StatSpec[] = [
    { name: 'running_mean', shape: [C], init: 'zeros', momentum },
    { name: 'running_var', shape: [C], init: 'ones', momentum },
  ];

  // Views bound into the model's flat buffers, all (C).
  let gamma: Float32Array = EMPTY, beta: Float32Array = EMPTY;
  let dgamma: Float32Array = EMPTY, dbeta: Float32Array = EMPTY;
  let runMean: Float32Array = EMPTY, runVar: Float32Array = EMPTY;
  let dsMean: Float32Array = EMPTY, dsVar: Float32Array = EMPTY;
  const mean = new Float64Array(C);        // (C) batch mean
  const varBiased = new Float64Array(C);   // (C) batch variance, biased
  const varUnbiased = new Float64Array(C); // (C)
  const rstd = new Float64Array(C);        // (C) 1/sqrt(var + eps), batch or running
  const y = new Workspace();               // (N, C, S)
  const xhat = new Workspace();            // (N, C, S) kept for backward
  const dx = new Workspace();              // (N, C, S)
  let xh = xhat.get(0);
  let samples = 0;                         // B of the last forward
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
        if (p[i]?.length !== C || g[i]?.length !== C || s[i]?.length !== C || ds[i]?.length !== C) {
          throw dptError('DPT_ERR_SHAPE', `${where}: ${params[i].name} / ${stats[i].name} views must hold ${C} floats`);
        }
      }
      gamma = p[0]; beta = p[1]; dgamma = g[0]; dbeta = g[1];
      runMean = s[0]; runVar = s[1]; dsMean = ds[0]; dsVar = ds[1];
    },
    forward(x, batch, ctx) {
      checkForwardInput(where, x, batch * E, batch, inShape);
      samples = batch;
      const N = batch * lead;
      const out = y.get(batch * E);
      xh = xhat.get(batch * E);
      trained = ctx.training;
      if (!trained) {
        batchNormEvalForward(out, xh, rstd, x, gamma, beta, runMean, runVar, N, C, S, eps);
        return out;
      }
      batchNormTrainForward(out, xh, mean, varBiased, rstd, x, gamma, beta, N, C, S, eps);
      unbiasedVariance(varUnbiased, varBiased, N * S, C);
      // NOTE: weighted by samples B, not by the M values per channel: the
      // trainer divides the reduced sum by the number of SAMPLES in the
      // global batch. Every micro-shard's statistic is over its own M values
      // but counts as B samples, so sum(B_k stat_k) / N is the
      // sample-weighted mean of the micro-shard statistics.
      for (let c = 0; c < C; c++) {
        dsMean[c] += batch * mean[c];
        dsVar[c] += batch * varUnbiased[c];
      }
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch !== samples || dy.length < batch * E) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${samples} samples of ${fmtShape(inShape)})`);
      }
      const N = batch * lead;
      const din = needDx ? dx.get(batch * E) : null;
      if (trained) batchNormTrainBackward(din, dgamma, dbeta, dy, xh, gamma, rstd, N, C, S);
      else batchNormEvalBackward(din, dgamma, dbeta, dy, xh, gamma, rstd, N, C, S);
      return din;
    },
  };
}
