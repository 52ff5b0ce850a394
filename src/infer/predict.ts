// Prediction: the model in inference mode (dropout off, BatchNorm on its
// running statistics) over an input matrix, `batchSize` rows per forward
// pass (rows are independent and the kernels' sums do not depend on the row
// count, so the batch size never changes a bit), then the outputs read as
// the loss defines them (outputs.ts).
import { DptrainError } from '../errors.js';
import { argmaxRows, thresholdRows } from '../metrics/index.js';
import type { Model } from '../model/model.js';
import { probabilitiesOf, valuesOf, type OutputKind } from './outputs.js';

export interface ClassPrediction {
  readonly task: 'classification';
  /** Samples predicted. */
  readonly rows: number;
  readonly numClasses: number;
  /** The model's raw outputs, (rows, outputSize). */
  readonly outputs: Float32Array;
  /** Class probabilities (rows, numClasses); null where the loss defines none (margin losses: the outputs are scores). */
  readonly probabilities: Float32Array | null;
  /** The predicted class id of each row. */
  readonly classes: Int32Array;
  /** The predicted class of each row by name (its id as a string where the model has no names). */
  readonly labels: string[];
  /** The name of each class id. */
  readonly classNames: readonly string[];
}

export interface ValuePrediction {
  readonly task: 'regression';
  readonly rows: number;
  readonly outputSize: number;
  /** The model's raw outputs, (rows, outputSize). */
  readonly outputs: Float32Array;
  /** The outputs in the targets' units (sigmoid applied for independent binary labels), (rows, outputSize). */
  readonly values: Float32Array;
}

export type Prediction = ClassPrediction | ValuePrediction;

export const DEFAULT_PREDICT_BATCH = 1000;

/**
 * The model's outputs (n, outputSize) for the input matrix x (n, inputSize),
 * batchSize rows at a time. Where a batch does not fit the wasm kernels'
 * fixed memory (DPT_ERR_MEMORY: a convolution's outputs for a thousand
 * images are hundreds of megabytes), the model frees its layers' buffers and
 * goes on from that row with half as many rows, down to one, and frees them
 * again at the end; the rows done stand (the row count changes no bit).
 */
export function forwardInBatches(model: Model, x: Float32Array, n: number, batchSize: number): Float32Array {
  const D = model.outSize;
  const F = model.inSize;
  const out = new Float32Array(n * D);
  let per = batchSize;
  for (let s = 0; s < n;) {
    const rows = Math.min(per, n - s);
    let y: Float32Array;
    try {
      y = model.forward(x.subarray(s * F, (s + rows) * F), rows, { training: false, seed: 0, step: 0, rowOffset: 0 });
    } catch (err) {
      if (rows === 1 || model.releaseBuffers === undefined || !(err instanceof DptrainError) || err.code !== 'DPT_ERR_MEMORY') throw err;
      model.releaseBuffers();
      per = Math.ceil(rows / 2);
      continue;
    }
    out.set(y.subarray(0, rows * D), s * D);
    s += rows;
  }
  if (per < batchSize) model.releaseBuffers?.();
  return out;
}

/** Reads a model's outputs as its kind says (outputs.ts). */
export function predictionOf(kind: OutputKind, outputs: Float32Array, n: number, D: number, classNames: readonly string[] | null): Prediction {
  if (kind.task === 'regression') {
    return { task: 'regression', rows: n, outputSize: D, outputs, values: valuesOf(kind.values, outputs) };
  }
  const C = kind.numClasses;
  const classes = new Int32Array(n);
  if (kind.probabilities === 'sigmoid-binary') thresholdRows(outputs, n, 0, classes);
  else argmaxRows(outputs, n, D, classes);
  let probabilities: Float32Array | null = null;
  if (kind.probabilities !== 'none') {
    probabilities = new Float32Array(n * C);
    probabilitiesOf(kind.probabilities, outputs, n, D, probabilities);
  }
  const names = classNames ?? Array.from({ length: C }, (_, c) => String(c));
  return { task: 'classification', rows: n, numClasses: C, outputs, probabilities, classes, labels: Array.from(classes, (c) => names[c]), classNames: names };
}
