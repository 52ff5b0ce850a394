// Evaluation in inference mode (dropout off, BatchNorm on running
// statistics): mean loss over a dataset and, for class labels, the
// predicted classes and the classification metrics.
import type { Dataset } from '../data/dataset.js';
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { Workspace } from '../nn/layer.js';
import { DptrainError } from '../errors.js';
import { argmaxRows, classificationReport, confusionMatrix } from '../metrics/index.js';

export interface Evaluation {
  loss: number;
  /** Present for classification (integer labels). */
  accuracy?: number;
  f1Macro?: number;
  precisionMacro?: number;
  recallMacro?: number;
  confusion?: number[][];
  samples: number;
  /** Rows per forward pass: the chunk asked for, or fewer where that many rows did not fit the kernels' memory. */
  batchSize: number;
}

const dpredSpace = new Workspace();

/**
 * Evaluates in chunks of `chunk` rows; where a chunk does not fit the wasm
 * kernels' fixed memory (DPT_ERR_MEMORY: a convolution's outputs for a
 * thousand images are hundreds of megabytes), it frees the layers' buffers
 * and starts over with half as many rows, down to one (the result's
 * batchSize says which it used), and frees them again after: the training
 * steps that follow need their room. A failed forward pass changes no
 * weight and no running statistic.
 */
export function evaluate(model: Model, loss: Loss, data: Dataset, chunk: number): Evaluation {
  let failed = false;
  for (let rows = Math.max(1, Math.min(chunk, data.n));; rows = Math.ceil(rows / 2)) {
    try {
      const result = evaluateInChunks(model, loss, data, rows);
      if (!failed) return { ...result, batchSize: chunk }; // a test set smaller than the chunk is no reduction
      release(model);
      return result;
    } catch (err) {
      if (rows === 1 || model.releaseBuffers === undefined || !(err instanceof DptrainError) || err.code !== 'DPT_ERR_MEMORY') throw err;
      failed = true;
      release(model);
    }
  }
}

function release(model: Model): void {
  model.releaseBuffers?.();
  dpredSpace.release();
}

function evaluateInChunks(model: Model, loss: Loss, data: Dataset, chunk: number): Evaluation {
  const xSize = model.inSize;
  const ySize = data.yShape.reduce((a, b) => a * b, 1);
  const classification = data.yShape.length === 0 && data.numClasses !== undefined;
  const predicted = new Int32Array(data.n);
  const truth = new Int32Array(data.n);
  let lossSum = 0;
  for (let s = 0; s < data.n; s += chunk) {
    const rows = Math.min(chunk, data.n - s);
    const x = data.x.subarray(s * xSize, (s + rows) * xSize);
    const y = data.y.subarray(s * ySize, (s + rows) * ySize);
    const pred = model.forward(x, rows, { training: false, seed: 0, step: 0, rowOffset: 0 });
    lossSum += loss.forwardBackward(pred, y, rows, model.outSize, dpredSpace.get(rows * model.outSize), 1);
    if (classification) {
      argmaxRows(pred, rows, model.outSize, predicted.subarray(s, s + rows));
      for (let r = 0; r < rows; r++) truth[s + r] = y[r];
    }
  }
  const result: Evaluation = { loss: lossSum / data.n, samples: data.n, batchSize: chunk };
  if (classification) {
    const C = data.numClasses!;
    const cm = confusionMatrix(truth, predicted, C);
    const report = classificationReport(cm);
    result.accuracy = report.accuracy;
    result.f1Macro = report.macro.f1;
    result.precisionMacro = report.macro.precision;
    result.recallMacro = report.macro.recall;
    result.confusion = Array.from({ length: C }, (_, i) => Array.from(cm.subarray(i * C, (i + 1) * C)));
  }
  return result;
}
