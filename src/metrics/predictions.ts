// From model outputs to predicted class ids, for the metrics.
//
//   pred (n, D) row-major, out (n) class ids

import { dptError } from '../errors.js';

/**
 * out[i] = argmax_j pred[i, j] for i < n: the first maximum on ties
 * (numpy's argmax). NaN entries are never chosen, unless a whole row is NaN
 * (then 0). Returns out.
 */
export function argmaxRows(pred: ArrayLike<number>, n: number, D: number, out: Int32Array): Int32Array {
  if (!Number.isInteger(D) || D < 1) throw dptError('DPT_ERR_SHAPE', `argmaxRows: D must be a positive integer, got ${D}`);
  if (pred.length < n * D) throw dptError('DPT_ERR_SHAPE', `argmaxRows: pred holds ${pred.length} numbers, expected n * D = ${n} * ${D}`);
  if (out.length < n) throw dptError('DPT_ERR_SHAPE', `argmaxRows: out holds ${out.length} entries, expected n = ${n}`);
  for (let i = 0; i < n; i++) {
    const row = i * D;
    let best = 0, bestValue = pred[row];
    for (let j = 1; j < D; j++) {
      const v = pred[row + j];
      if (v > bestValue || (bestValue !== bestValue && v === v)) { best = j; bestValue = v; }
    }
    out[i] = best;
  }
  return out;
}

/**
 * out[i] = 1 where pred[i] > threshold, else 0, for a model with ONE output
 * per sample (threshold 0 on logits, 0.5 on probabilities). Returns out.
 */
export function thresholdRows(pred: ArrayLike<number>, n: number, threshold: number, out: Int32Array): Int32Array {
  if (pred.length < n) throw dptError('DPT_ERR_SHAPE', `thresholdRows: pred holds ${pred.length} numbers, expected n = ${n}`);
  if (out.length < n) throw dptError('DPT_ERR_SHAPE', `thresholdRows: out holds ${out.length} entries, expected n = ${n}`);
  for (let i = 0; i < n; i++) out[i] = pred[i] > threshold ? 1 : 0;
  return out;
}
