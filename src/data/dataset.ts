// The one in-memory dataset format of dptrain. A dataset is two flat float32
// buffers, x (features) and y (targets), with n samples laid out row after
// row, and per-sample shapes:
//
//   x: (n, ...xShape)   e.g. MNIST xShape [784], or the same buffer seen as
//                        a row sequence [28, 28] for an LSTM/GRU (viewAs)
//   y: (n, ...yShape)   yShape [] for a class id stored as a float
//                        (classification: numClasses is set), [D] for D
//                        regression targets per sample
//
// The buffers may live on a SharedArrayBuffer (worker threads share one copy,
// see toShared): nothing here assumes `.buffer` is an ArrayBuffer.

import { dptError, fmtShape } from '../errors.js';

export interface Dataset {
  /** A short human-readable name, e.g. "mnist-train". */
  name: string;
  /** Features, (n, ...xShape), float32. */
  x: Float32Array;
  /** Targets, (n, ...yShape), float32: class ids 0..numClasses-1 or regression values. */
  y: Float32Array;
  /** Number of samples. */
  n: number;
  /** Shape of one sample's features, e.g. [784] or [28, 28]. */
  xShape: number[];
  /** Shape of one sample's target: [] for a class id, [D] for regression. */
  yShape: number[];
  /** Set for classification (then yShape is []); absent for regression. */
  numClasses?: number;
  /** One name per feature (length = sampleSize(xShape)), e.g. CSV column names. */
  featureNames?: string[];
}

/** Number of floats in one sample of this per-sample shape ([] -> 1). */
export function sampleSize(shape: readonly number[]): number {
  let size = 1;
  for (const d of shape) size *= d;
  return size;
}

function checkShape(what: string, shape: readonly number[], allowEmpty: boolean): void {
  if (!Array.isArray(shape)) throw dptError('DPT_ERR_DATASET', `${what} must be an array of dimensions`);
  if (!allowEmpty && shape.length === 0) throw dptError('DPT_ERR_DATASET', `${what} must have at least one dimension`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 1) {
      throw dptError('DPT_ERR_DATASET', `${what} ${fmtShape(shape)}: every dimension must be a positive integer`);
    }
  }
}

export interface ValidateOptions {
  /**
   * Also check the values (default true): every x finite, every y finite,
   * and for classification every label an integer in [0, numClasses).
   * Costs one pass over the data.
   */
  values?: boolean;
}

/**
 * Check a dataset's structure (shapes, lengths, numClasses, featureNames)
 * and, unless `values: false`, its values. Throws DPT_ERR_DATASET naming the
 * dataset, the field and, for a bad value, the sample.
 */
export function validateDataset(ds: Dataset, opts: ValidateOptions = {}): void {
  const name = typeof ds.name === 'string' ? ds.name : '(unnamed)';
  const where = `dataset "${name}"`;
  if (typeof ds.name !== 'string' || ds.name.length === 0) throw dptError('DPT_ERR_DATASET', `${where}: name must be a non-empty string`);
  if (!Number.isInteger(ds.n) || ds.n < 0) throw dptError('DPT_ERR_DATASET', `${where}: n must be a non-negative integer, got ${ds.n}`);
  checkShape(`${where}: xShape`, ds.xShape, false);
  checkShape(`${where}: yShape`, ds.yShape, true);
  if (!(ds.x instanceof Float32Array)) throw dptError('DPT_ERR_DATASET', `${where}: x must be a Float32Array`);
  if (!(ds.y instanceof Float32Array)) throw dptError('DPT_ERR_DATASET', `${where}: y must be a Float32Array`);
  const sx = sampleSize(ds.xShape);
  const sy = sampleSize(ds.yShape);
  if (ds.x.length !== ds.n * sx) {
    throw dptError('DPT_ERR_DATASET', `${where}: x has ${ds.x.length} floats, expected n * size(xShape) = ${ds.n} * ${sx} = ${ds.n * sx}`);
  }
  if (ds.y.length !== ds.n * sy) {
    throw dptError('DPT_ERR_DATASET', `${where}: y has ${ds.y.length} floats, expected n * size(yShape) = ${ds.n} * ${sy} = ${ds.n * sy}`);
  }
  if (ds.numClasses !== undefined) {
    if (!Number.isInteger(ds.numClasses) || ds.numClasses < 2) {
      throw dptError('DPT_ERR_DATASET', `${where}: numClasses must be an integer >= 2, got ${ds.numClasses}`);
    }
    if (ds.yShape.length !== 0) {
      throw dptError('DPT_ERR_DATASET', `${where}: a classification dataset (numClasses set) must have yShape [] (one class id per sample), got ${fmtShape(ds.yShape)}`);
    }
  }
  if (ds.featureNames !== undefined) {
    if (!Array.isArray(ds.featureNames) || ds.featureNames.some((f) => typeof f !== 'string')) {
      throw dptError('DPT_ERR_DATASET', `${where}: featureNames must be an array of strings`);
    }
    if (ds.featureNames.length !== sx) {
      throw dptError('DPT_ERR_DATASET', `${where}: featureNames has ${ds.featureNames.length} names, expected one per feature (${sx})`);
    }
  }
  if (opts.values === false) return;

  const x = ds.x;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw dptError('DPT_ERR_DATASET', `${where}: x of sample ${Math.floor(i / sx)}, feature ${i % sx} is ${x[i]} (features must be finite)`);
    }
  }
  const y = ds.y;
  if (ds.numClasses !== undefined) {
    const C = ds.numClasses;
    for (let i = 0; i < y.length; i++) {
      const label = y[i];
      // NOTE: NaN fails every comparison, so test "is a valid label" positively.
      if (!(Number.isInteger(label) && label >= 0 && label < C)) {
        throw dptError('DPT_ERR_DATASET', `${where}: label of sample ${i} is ${label}, expected an integer class id in 0..${C - 1}`);
      }
    }
  } else {
    for (let i = 0; i < y.length; i++) {
      if (!Number.isFinite(y[i])) {
        throw dptError('DPT_ERR_DATASET', `${where}: target of sample ${Math.floor(i / sy)}, component ${i % sy} is ${y[i]} (targets must be finite)`);
      }
    }
  }
}

/** A shallow copy of the metadata with new buffers (and optionally other fields). */
function withBuffers(ds: Dataset, x: Float32Array, y: Float32Array, n: number, name: string): Dataset {
  const out: Dataset = { name, x, y, n, xShape: ds.xShape.slice(), yShape: ds.yShape.slice() };
  if (ds.numClasses !== undefined) out.numClasses = ds.numClasses;
  if (ds.featureNames !== undefined) out.featureNames = ds.featureNames.slice();
  return out;
}

/**
 * The same samples seen with another per-sample x shape, e.g. MNIST [784] as
 * a sequence of 28 rows of 28 pixels, [28, 28], for an LSTM/GRU. Shares the
 * x and y buffers (no copy). The sizes must agree.
 */
export function viewAs(ds: Dataset, xShape: readonly number[]): Dataset {
  checkShape(`viewAs: xShape`, xShape, false);
  const from = sampleSize(ds.xShape);
  const to = sampleSize(xShape);
  if (from !== to) {
    throw dptError('DPT_ERR_SHAPE', `viewAs: dataset "${ds.name}" has ${from} features per sample (xShape ${fmtShape(ds.xShape)}), ` +
      `which cannot be seen as ${fmtShape(xShape)} (${to} features)`);
  }
  const out = withBuffers(ds, ds.x, ds.y, ds.n, ds.name);
  out.xShape = xShape.slice();
  return out;
}

/**
 * A new dataset of the given samples in the given order (repeats allowed),
 * copied into fresh (non-shared) buffers.
 */
export function subset(ds: Dataset, indices: ArrayLike<number>, name = `${ds.name}-subset`): Dataset {
  const sx = sampleSize(ds.xShape);
  const sy = sampleSize(ds.yShape);
  const m = indices.length;
  const x = new Float32Array(m * sx); // (m, sx)
  const y = new Float32Array(m * sy); // (m, sy)
  for (let r = 0; r < m; r++) {
    const i = indices[r];
    if (!Number.isInteger(i) || i < 0 || i >= ds.n) {
      throw dptError('DPT_ERR_DATASET', `subset of "${ds.name}": index ${i} at position ${r} is not a sample index in 0..${ds.n - 1}`);
    }
    x.set(ds.x.subarray(i * sx, (i + 1) * sx), r * sx);
    y.set(ds.y.subarray(i * sy, (i + 1) * sy), r * sy);
  }
  return withBuffers(ds, x, y, m, name);
}

/**
 * Split at sample `at`: samples [0, at) and [at, n). Both halves are views
 * into the original buffers (no copy), so they stay on a SharedArrayBuffer
 * if the original was.
 */
export function split(ds: Dataset, at: number, names: [string, string] = [`${ds.name}-a`, `${ds.name}-b`]): [Dataset, Dataset] {
  if (!Number.isInteger(at) || at < 0 || at > ds.n) {
    throw dptError('DPT_ERR_DATASET', `split of "${ds.name}": split point ${at} must be an integer in 0..${ds.n}`);
  }
  const sx = sampleSize(ds.xShape);
  const sy = sampleSize(ds.yShape);
  const a = withBuffers(ds, ds.x.subarray(0, at * sx), ds.y.subarray(0, at * sy), at, names[0]);
  const b = withBuffers(ds, ds.x.subarray(at * sx), ds.y.subarray(at * sy), ds.n - at, names[1]);
  return [a, b];
}

/** Whether a typed array lives on a SharedArrayBuffer. */
export function isShared(arr: ArrayBufferView): boolean {
  const SAB = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
  return SAB !== undefined && arr.buffer instanceof SAB;
}

/**
 * A copy of the dataset whose x and y live on SharedArrayBuffers, to be
 * shared (not copied, not transferred) with worker threads. Throws
 * DPT_ERR_DATASET where the runtime has no SharedArrayBuffer (a browser page
 * that is not cross-origin isolated).
 */
export function toShared(ds: Dataset): Dataset {
  const SAB = (globalThis as { SharedArrayBuffer?: typeof SharedArrayBuffer }).SharedArrayBuffer;
  if (SAB === undefined) {
    throw dptError('DPT_ERR_DATASET', `toShared("${ds.name}"): SharedArrayBuffer is not available in this runtime ` +
      `(a browser page needs cross-origin isolation: the COOP and COEP headers)`);
  }
  const x = new Float32Array(new SAB(ds.x.length * 4));
  x.set(ds.x);
  const y = new Float32Array(new SAB(ds.y.length * 4));
  y.set(ds.y);
  return withBuffers(ds, x, y, ds.n, ds.name);
}
