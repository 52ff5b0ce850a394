// The confusion matrix, C x C, row-major: cm[i * C + j] counts the samples
// with true class i and predicted class j (rows = TRUE class, columns =
// PREDICTED class, scikit-learn's convention). Counts are integers, so
// matrices of parts of a dataset (micro-shards, workers) add up exactly.

import { dptError } from '../errors.js';

/**
 * A new (C, C) confusion matrix of the first n samples (default: all of
 * yTrue, which must then have yPred's length). Throws DPT_ERR_DATASET for a
 * class id that is not an integer in [0, C), naming the sample.
 */
export function confusionMatrix(
  yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number, n?: number,
): Int32Array {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw dptError('DPT_ERR_SHAPE', `confusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
  }
  const cm = new Int32Array(numClasses * numClasses);
  accumulateConfusion(cm, yTrue, yPred, numClasses, n);
  return cm;
}

/** Adds the first n samples (default: all) into an existing (C, C) matrix. */
export function accumulateConfusion(
  cm: Int32Array, yTrue: ArrayLike<number>, yPred: ArrayLike<number>, numClasses: number, n?: number,
): void {
  const C = numClasses;
  if (cm.length !== C * C) throw dptError('DPT_ERR_SHAPE', `confusion matrix holds ${cm.length} counts, expected C * C = ${C * C}`);
  if (n === undefined) {
    if (yTrue.length !== yPred.length) {
      throw dptError('DPT_ERR_SHAPE', `confusion matrix: y_true has ${yTrue.length} labels but y_pred has ${yPred.length}`);
    }
    n = yTrue.length;
  } else if (yTrue.length < n || yPred.length < n) {
    throw dptError('DPT_ERR_SHAPE', `confusion matrix: n = ${n} but y_true has ${yTrue.length} labels and y_pred ${yPred.length}`);
  }
  for (let i = 0; i < n; i++) {
    const t = yTrue[i], p = yPred[i];
    if (!Number.isInteger(t) || t < 0 || t >= C) {
      throw dptError('DPT_ERR_DATASET', `confusion matrix: y_true sample ${i} has class label ${t}; labels must be integers in [0, ${C})`);
    }
    if (!Number.isInteger(p) || p < 0 || p >= C) {
      throw dptError('DPT_ERR_DATASET', `confusion matrix: y_pred sample ${i} has class label ${p}; labels must be integers in [0, ${C})`);
    }
    cm[t * C + p]++;
  }
}
