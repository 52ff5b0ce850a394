// Accuracy, precision, recall and F1 from a confusion matrix, with
// scikit-learn's conventions (1.2.1, the fixtures' README, section 11):
//
//   * all C labels are included (labels = [0, C)), even a class that never
//     occurs in y_true or y_pred;
//   * zero_division = 0: a 0/0 precision, recall or F1 is 0;
//   * per class c: TP = cm[c][c], predicted = column sum, support (true) = row sum,
//     precision = TP / predicted, recall = TP / support,
//     F1 = 2 P R / (P + R) (0 when P + R = 0);
//   * macro = unweighted mean over the C classes; weighted = mean weighted by
//     support (0 when every support is 0); micro = from the summed TP /
//     predicted / support counts (for single-label data P = R = F1 =
//     accuracy up to the last bit);
//   * binary (C = 2 only): precision, recall, F1 of the positive class 1.
//
// Accuracy of an empty matrix is reported as 0.

import { dptError } from '../errors.js';

export interface PrecisionRecallF1 {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassificationReport {
  numClasses: number;
  /** Number of samples (sum of the matrix). */
  total: number;
  accuracy: number;
  /** Per class c = 0..C-1 (average=None). */
  perClass: { precision: number[]; recall: number[]; f1: number[]; support: number[] };
  macro: PrecisionRecallF1;
  micro: PrecisionRecallF1;
  weighted: PrecisionRecallF1;
  /** average='binary' with pos_label 1, only when C = 2; null otherwise. */
  binary: PrecisionRecallF1 | null;
}

/** a / b, or 0 when b = 0 (zero_division = 0). */
function divide(a: number, b: number): number {
  return b === 0 ? 0 : a / b;
}

/** F1 as scikit-learn forms it: (1 + beta^2) P R / (beta^2 P + R), beta = 1. */
function f1Of(p: number, r: number): number {
  const den = p + r;
  return den === 0 ? 0 : (2 * p * r) / den;
}

/** The report of a row-major (C, C) confusion matrix (rows true, columns predicted). */
export function classificationReport(cm: ArrayLike<number>): ClassificationReport {
  const C = Math.round(Math.sqrt(cm.length));
  if (C < 1 || C * C !== cm.length) {
    throw dptError('DPT_ERR_SHAPE', `classificationReport: the confusion matrix holds ${cm.length} counts, not C * C for any C >= 1`);
  }
  const precision: number[] = [], recall: number[] = [], f1: number[] = [], support: number[] = [];
  let total = 0, tpSum = 0;
  for (let c = 0; c < C; c++) {
    let predicted = 0, actual = 0;
    for (let k = 0; k < C; k++) {
      predicted += cm[k * C + c];
      actual += cm[c * C + k];
    }
    const tp = cm[c * C + c];
    const p = divide(tp, predicted), r = divide(tp, actual);
    precision.push(p);
    recall.push(r);
    f1.push(f1Of(p, r));
    support.push(actual);
    total += actual;
    tpSum += tp;
  }
  const mean = (a: number[]): number => {
    let s = 0;
    for (const v of a) s += v;
    return s / a.length;
  };
  const weightedMean = (a: number[]): number => {
    if (total === 0) return 0;
    let s = 0;
    for (let c = 0; c < C; c++) s += a[c] * support[c];
    return s / total;
  };
  // Single-label data: every sample is predicted once, so the summed
  // predicted and true counts both equal the total.
  const microP = divide(tpSum, total), microR = divide(tpSum, total);
  return {
    numClasses: C,
    total,
    accuracy: divide(tpSum, total),
    perClass: { precision, recall, f1, support },
    macro: { precision: mean(precision), recall: mean(recall), f1: mean(f1) },
    micro: { precision: microP, recall: microR, f1: f1Of(microP, microR) },
    weighted: { precision: weightedMean(precision), recall: weightedMean(recall), f1: weightedMean(f1) },
    binary: C === 2 ? { precision: precision[1], recall: recall[1], f1: f1[1] } : null,
  };
}
