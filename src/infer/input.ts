// Raw inputs -> the float32 matrix (n, inputSize) a model reads, with the
// model's stored scaling applied. Inputs come as
//   - one flat array of n * inputSize numbers (Float32Array, Float64Array, number[]),
//   - rows: an array of n arrays of inputSize numbers each,
//   - named rows: an array of n objects { featureName: number } (models that
//     know their feature names: extra keys are ignored, like extra CSV columns).
// Every value must be a finite number; a row of the wrong length or a
// missing feature is refused naming the row (counted from 0) and the feature.
//
// Scaling: x' = (x - mean[j]) / scale[j] in float64, rounded to float32 once,
// as the CSV loader does at training time, so numbers given as float64 (a
// parsed CSV, number[]) reach the model bit-identical to training's own
// evaluation. A Float32Array was rounded before the scaling; its results may
// differ in the last bits.
import { dptError } from '../errors.js';
import type { InputScaling } from '../model/inference-info.js';

/** One sample's input values, in the model's order. */
export type FeatureRow = ArrayLike<number>;
/** One sample by feature name (models trained on named columns). */
export type NamedRow = Readonly<Record<string, number>>;
export type PredictInput = Float32Array | Float64Array | readonly number[] | readonly FeatureRow[] | readonly NamedRow[];

export interface InputLayout {
  readonly inputSize: number;
  readonly featureNames: readonly string[] | null;
  /** null: the inputs are used as given. */
  readonly scaling: InputScaling | null;
}

/** A value's description for messages. */
function shown(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

function finiteAt(v: unknown, where: () => string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw dptError('DPT_ERR_DATASET', `${where()}: ${shown(v)} is not a finite number`);
  return v;
}

function featureLabel(layout: InputLayout, j: number): string {
  return layout.featureNames !== null ? `feature "${layout.featureNames[j]}"` : `value ${j}`;
}

/** The number of samples in an input, and a reader of value j of sample i (unchecked). */
function readerOf(input: PredictInput, layout: InputLayout): { n: number; value(i: number, j: number): unknown } {
  const F = layout.inputSize;
  const first: unknown = (input as ArrayLike<unknown>)[0];
  if (ArrayBuffer.isView(input) || typeof first === 'number' || (input as ArrayLike<unknown>).length === 0) {
    const flat = input as ArrayLike<unknown>;
    if (flat.length % F !== 0) {
      throw dptError('DPT_ERR_SHAPE', `predict: a flat input holds ${flat.length} values, not a multiple of the model's ${F} per sample`);
    }
    return { n: flat.length / F, value: (i, j) => flat[i * F + j] };
  }
  const rows = input as readonly unknown[];
  rows.forEach((row, i) => {
    if (row === null || typeof row !== 'object') throw dptError('DPT_ERR_SHAPE', `predict: input row ${i} is ${shown(row)}, not an array of numbers or an object of features`);
  });
  if (Array.isArray(first) || ArrayBuffer.isView(first)) {
    rows.forEach((row, i) => {
      const len = (row as ArrayLike<unknown>).length;
      if (!(Array.isArray(row) || ArrayBuffer.isView(row))) throw dptError('DPT_ERR_SHAPE', `predict: input row ${i} is an object; row 0 is an array (give every row the same way)`);
      if (len !== F) {
        const names = layout.featureNames !== null ? ` (${layout.featureNames.join(', ')})` : '';
        throw dptError('DPT_ERR_SHAPE', `predict: input row ${i} has ${len} values; the model reads ${F} per sample${names}`);
      }
    });
    return { n: rows.length, value: (i, j) => (rows[i] as ArrayLike<unknown>)[j] };
  }
  const names = layout.featureNames;
  if (names === null) {
    throw dptError('DPT_ERR_SHAPE', 'predict: rows given as objects need a model that knows its feature names (one trained on CSV columns); give arrays of numbers');
  }
  rows.forEach((row, i) => {
    if (Array.isArray(row) || ArrayBuffer.isView(row)) throw dptError('DPT_ERR_SHAPE', `predict: input row ${i} is an array; row 0 is an object of features (give every row the same way)`);
    const missing = names.find((name) => !Object.hasOwn(row as object, name));
    if (missing !== undefined) throw dptError('DPT_ERR_DATASET', `predict: input row ${i} has no feature "${missing}" (the model reads ${names.join(', ')})`);
  });
  return { n: rows.length, value: (i, j) => (rows[i] as Record<string, unknown>)[names[j]] };
}

/** The model's input matrix (n, inputSize) from raw inputs, checked and scaled. */
export function inputMatrix(input: PredictInput, layout: InputLayout): { x: Float32Array; n: number } {
  const F = layout.inputSize;
  const { n, value } = readerOf(input, layout);
  const x = new Float32Array(n * F);
  const s = layout.scaling;
  const perFeature = s !== null && s.mean.length > 1;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < F; j++) {
      const v = finiteAt(value(i, j), () => `predict: input row ${i}, ${featureLabel(layout, j)}`);
      if (s === null) {
        x[i * F + j] = v;
      } else {
        const k = perFeature ? j : 0;
        x[i * F + j] = (v - s.mean[k]) / s.scale[k];
      }
    }
  }
  return { x, n };
}
