// Macro soft-F1: a differentiable surrogate of the F1 score, on softmax
// probabilities of logits z (n, C), with an integer class id y per sample.
//
//   p_nc = softmax(z_n)_c,  y_nc = [y_n = c]
//   TP_c = sum_n p_nc y_nc,  FP_c = sum_n p_nc (1 - y_nc),  FN_c = sum_n (1 - p_nc) y_nc
//   F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c + eps) = 2 TP_c / (P_c + Y_c + eps)
//          with P_c = sum_n p_nc, Y_c = sum_n y_nc  (2TP + FP + FN = P + Y)
//   softF1 = mean over the C classes of F1_c;  the loss of a set of samples is 1 - softF1
//
// How it fits "sum over samples, divide by N later" (NOTE: read this before
// using soft_f1). Soft-F1 is not a sum of per-sample terms: it is a function
// of the whole set of samples it is computed on. This loss computes it on
// each call, i.e. on each MICRO-SHARD, and defines the call's contribution
// to the loss sum as
//
//   n * (1 - softF1(shard))          (n = samples in the shard)
//
// and dpred as scale times its gradient. After the fixed-order reduction the
// trainer divides by the global batch size N, so the training objective is
//
//   sum_k (n_k / N) * (1 - softF1(shard k)),
//
// the size-weighted mean of the per-micro-shard soft-F1 losses; it is NOT
// 1 - softF1 of the whole global batch. It is still deterministic and
// independent of the number of workers (the micro-sharding is fixed by K),
// but changing K (or the batch size) changes the objective, and so does
// evaluating in other chunk sizes. perSample receives 1 - softF1(call) for
// every sample of the call, so that perSample sums (up to rounding) to the
// returned value.
//
// A class absent from a shard's labels has TP_c = 0, hence F1_c = 0 whatever
// the predictions, with zero gradient: it adds the constant 1/C to that
// shard's loss (so the loss of perfect predictions is 0 only when every class
// occurs in the shard). Use shards large enough to hold every class.

import { checkCall, readLabel, type Loss } from './loss.js';

export interface SoftF1Options {
  /** Added to each class's denominator (default 1e-7). */
  eps?: number;
}

export const SOFT_F1_EPS = 1e-7;

export function softF1Loss(options: SoftF1Options = {}): Loss {
  const eps = options.eps ?? SOFT_F1_EPS;
  const loss: Loss = {
    name: 'soft_f1',
    target: 'class',
    shardLevel: true,
    targetSize: () => 1,
    forwardBackward(pred, target, n, C, dpred, scale, perSample) {
      checkCall(loss, pred, target, n, C, dpred, perSample, 2);
      if (n === 0) return 0;
      const tp = new Float64Array(C);    // (C) TP_c
      const den = new Float64Array(C);   // (C) P_c + Y_c + eps
      const prob = new Float64Array(C);  // (C) softmax of the current row
      // Pass 1: softmax of each row, class sums.
      for (let i = 0; i < n; i++) {
        const y = readLabel('soft_f1', target, i, C);
        const row = i * C;
        softmaxRow(pred, row, C, prob);
        for (let c = 0; c < C; c++) den[c] += prob[c];
        tp[y] += prob[y];
        den[y] += 1;
      }
      let f1Sum = 0;
      for (let c = 0; c < C; c++) {
        den[c] += eps;
        f1Sum += (2 * tp[c]) / den[c];
      }
      const value = 1 - f1Sum / C;
      // Pass 2: d(n * value)/dp_nc = -(n/C) dF1_c/dp_nc,
      //   dF1_c/dp_nc = 2 y_nc / den_c - 2 TP_c / den_c^2,
      // then through the softmax: dz_nj = p_nj (g_nj - sum_c p_nc g_nc).
      const g = new Float64Array(C);     // (C) dloss/dp of the current row
      const k = -n / C;
      for (let i = 0; i < n; i++) {
        const y = target[i];
        const row = i * C;
        softmaxRow(pred, row, C, prob);
        let dot = 0;
        for (let c = 0; c < C; c++) {
          const d = den[c];
          g[c] = k * ((c === y ? 2 / d : 0) - (2 * tp[c]) / (d * d));
          dot += prob[c] * g[c];
        }
        for (let c = 0; c < C; c++) dpred[row + c] = scale * (prob[c] * (g[c] - dot));
        if (perSample) perSample[i] = value;
      }
      return n * value;
    },
  };
  return loss;
}

/** prob = softmax(pred[row .. row + C)), with the max subtracted. */
function softmaxRow(pred: Float32Array, row: number, C: number, prob: Float64Array): void {
  let m = -Infinity;
  for (let c = 0; c < C; c++) if (pred[row + c] > m) m = pred[row + c];
  let s = 0;
  for (let c = 0; c < C; c++) {
    const e = Math.exp(pred[row + c] - m);
    prob[c] = e;
    s += e;
  }
  for (let c = 0; c < C; c++) prob[c] /= s;
}

export const softF1: Loss = softF1Loss();
