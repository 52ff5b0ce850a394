// Evaluation in inference mode (dropout off, BatchNorm on running
// statistics): mean loss over a dataset and, for class labels, the
// predicted classes and the classification metrics.
import type { Dataset } from '../data/dataset.js';
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { Workspace } from '../nn/layer.js';
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
}

const dpredSpace = new Workspace();

export function evaluate(model: Model, loss: Loss, data: Dataset, chunk: number): Evaluation {
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
  const result: Evaluation = { loss: lossSum / data.n, samples: data.n };
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
