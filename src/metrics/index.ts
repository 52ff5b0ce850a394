// Classification metrics: predicted classes, the confusion matrix, and
// accuracy / precision / recall / F1 with scikit-learn's conventions.
export { argmaxRows, thresholdRows } from './predictions.js';
export { accumulateConfusion, confusionMatrix } from './confusion.js';
export { classificationReport, type ClassificationReport, type PrecisionRecallF1 } from './report.js';
