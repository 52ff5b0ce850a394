// The config's `data` section -> the train and test datasets, and what a
// model trained on them needs at inference (inferenceInfoOf). Wiring only:
// the loaders are mnist.ts and csv.ts.

import { dptError } from '../../src/errors.js';
import { type Dataset, split, viewAs } from '../../src/data/dataset.js';
import type { InferenceInfo } from '../../src/model/inference-info.js';
import type { DataSpec } from '../run/config.js';
import { loadCsv } from './csv.js';
import { loadMnist, MNIST_CLASSES } from './mnist.js';

export interface LoadedTrainData {
  train: Dataset;
  test: Dataset;
  /** SHA-256 of each dataset's blob, when it has one (MNIST: cached blobs). */
  trainHash?: string;
  testHash?: string;
  /** Classification from CSV: the label of each class id. */
  classNames?: string[];
  /** CSV with standardize: the transform applied to the features. */
  standardization?: { mean: number[]; scale: number[] };
}

export interface LoadDataOptions {
  /** Directory that relative CSV paths are resolved against (the config file's; default cwd). */
  baseDir?: string;
  /** Cache directory for converted datasets (default: cache-dir.ts's defaultCacheDir()). */
  cacheDir?: string;
}

function firstN(ds: Dataset, limit: number | undefined): Dataset {
  if (limit === undefined || limit >= ds.n) return ds;
  return split(ds, limit, [ds.name, `${ds.name}-rest`])[0];
}

export async function loadTrainData(spec: DataSpec, opts: LoadDataOptions = {}): Promise<LoadedTrainData> {
  if (spec.type === 'mnist') {
    const m = await loadMnist(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {});
    let train = firstN(m.train.dataset, spec.trainLimit);
    let test = firstN(m.test.dataset, spec.testLimit);
    // The same pixels as other shapes: 28 rows of 28 (sequences), or one 28x28 channel (NCHW images).
    const shape = spec.view === 'rows' ? [28, 28] : spec.view === 'image' ? [1, 28, 28] : null;
    if (shape !== null) {
      train = viewAs(train, shape);
      test = viewAs(test, shape);
    }
    const out: LoadedTrainData = { train, test };
    // The hashes name the whole blobs; a limited subset is not that blob.
    if (spec.trainLimit === undefined) out.trainHash = m.train.hash;
    if (spec.testLimit === undefined) out.testHash = m.test.hash;
    return out;
  }
  const c = await loadCsv(spec, opts.baseDir !== undefined ? { baseDir: opts.baseDir } : {});
  if (c.test === undefined) {
    throw dptError('DPT_ERR_CONFIG', `data: CSV data needs a test set: give data.test (a file with the same columns) or data.testFraction (e.g. 0.2)`);
  }
  const out: LoadedTrainData = { train: c.train, test: c.test };
  if (c.classNames !== undefined) out.classNames = c.classNames;
  if (c.standardization !== undefined) out.standardization = c.standardization;
  return out;
}

/** MNIST models read grey levels 0-255 (as MNIST's files and images hold them), trained on them / 255. */
export const MNIST_SCALING = { mean: [0], scale: [255] };

/**
 * What a model trained on this data needs at inference, stored in its model
 * file: CSV feature names, their standardisation and the class names;
 * MNIST's pixel scaling and the digits as class names.
 */
export function inferenceInfoOf(spec: DataSpec, data: LoadedTrainData): InferenceInfo {
  if (spec.type === 'mnist') {
    // NOTE: the mnist package holds k/255 rounded to 3 decimals; a grey level / 255 differs from it by < 5e-4.
    return { scaling: MNIST_SCALING, classNames: Array.from({ length: MNIST_CLASSES }, (_, d) => String(d)) };
  }
  const info: InferenceInfo = {};
  if (data.train.featureNames !== undefined) info.featureNames = data.train.featureNames.slice();
  if (data.standardization !== undefined) info.scaling = { mean: data.standardization.mean.slice(), scale: data.standardization.scale.slice() };
  if (data.classNames !== undefined) info.classNames = data.classNames.slice();
  return info;
}
