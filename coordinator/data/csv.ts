// The user's own data from CSV files, into the dataset format.
//
// File format: csv-table.ts (a header row, one sample per line; a bad
// field is refused with its file, line and column).
//
// Columns: `label` names the target column; `features` (default: every
// other column, in header order) names the feature columns, in the order the
// model sees them. A test file must have the same columns (in any order).
//
// Tasks:
//   - classification (the default): the classes are those of the TRAINING
//     file. If every training label is a non-negative integer literal
//     ("0", "7"), labels are used as class ids and numClasses = 1 + the
//     largest; otherwise labels are strings and the distinct training labels,
//     sorted by UTF-16 code units (JavaScript's default sort: "10" < "9",
//     "Setosa" < "setosa"), get ids 0, 1, 2, ... (returned as classNames). A
//     test label that is not a class of the training file is an error.
//   - regression: the label column holds numbers; yShape [1].
//
// Test data: a separate `test` file, or `testFraction` of the training
// file's rows held out (not both; neither: no test set). The held-out rows
// are fixed: the first round(n * testFraction) indices of
// epochPermutation(CSV_SPLIT_SEED, 0, n), n the number of rows; both parts
// keep the file's row order.
//
// Standardisation (`standardize: true`, default false): each feature becomes
// (value - mean) / scale with the mean and population standard deviation
// (divide by n, like scikit-learn's StandardScaler) of the TRAINING rows
// only (after any hold-out); a feature whose std is 0 is only centered
// (scale 1). The same mean and scale are applied to the test rows and
// returned, for use at inference.

import { basename, resolve } from 'node:path';
import * as z from 'zod';
import { dptError } from '../../src/errors.js';
import { plainIssueMessage } from '../../src/check/zod-format.js';
import { type Dataset, validateDataset } from '../../src/data/dataset.js';
import { epochPermutation } from '../../src/data/sampler.js';
import { columnIndex, fileError, NUMBER_RE, parseNumber, readFeatures, readTable, type RawTable } from './csv-table.js';

/** Seed of the fixed hold-out split of a training file. */
export const CSV_SPLIT_SEED = 0x00c5f001;
/** Integer class ids above this are refused (class ids must be 0..C-1). */
export const MAX_CLASSES = 100_000;

/** Options of a CSV data source (part of the training config). */
export const CsvDataSpec = z.object({
  type: z.literal('csv'),
  /** Path of the training file (relative to the config's directory). */
  train: z.string().min(1),
  /** Path of a test file with the same columns. */
  test: z.string().min(1).optional(),
  /** Fraction of the training file's rows held out as the test set, in (0, 1). */
  testFraction: z.number().gt(0).lt(1).optional(),
  /** Name of the label (target) column. */
  label: z.string().min(1),
  /** Default 'classification'. */
  task: z.enum(['classification', 'regression']).optional(),
  /** Standardise features with the training rows' mean and std (default false). */
  standardize: z.boolean().optional(),
  /** Feature columns in model order (default: all columns but the label). */
  features: z.array(z.string().min(1)).min(1).optional(),
}).strict().superRefine((spec, ctx) => {
  if (spec.test !== undefined && spec.testFraction !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['testFraction'], message: 'give either "test" (a file) or "testFraction", not both' });
  }
});
export type CsvDataSpec = z.infer<typeof CsvDataSpec>;

/** Parse and check a CSV spec; throws DPT_ERR_CONFIG naming the field. */
export function parseCsvDataSpec(input: unknown): CsvDataSpec {
  const r = CsvDataSpec.safeParse(input, { error: plainIssueMessage });
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.join('.') : '(csv data spec)';
    throw dptError('DPT_ERR_CONFIG', `data.${field}: ${issue.message}`);
  }
  return r.data;
}

export interface CsvData {
  train: Dataset;
  test?: Dataset;
  task: 'classification' | 'regression';
  /** Feature column names, in model order. */
  featureNames: string[];
  /** Classification: the label of each class id (integer labels: "0", "1", ...). */
  classNames?: string[];
  /** When standardised: feature' = (feature - mean) / scale, from the training rows. */
  standardization?: { mean: number[]; scale: number[] };
}

export interface CsvLoadOptions {
  /** Directory that relative paths in the spec are resolved against (default: cwd). */
  baseDir?: string;
}

const CLASS_ID_RE = /^\d+$/;

interface Classes {
  names: string[];
  idOf: (t: RawTable, r: number, raw: string) => number;
}

/** The classes of the training labels (see the top of the file). */
function classesOf(t: RawTable, labelCol: number, label: string): Classes {
  const raws = t.rows.map((row, r) => {
    const raw = row[labelCol];
    if (raw === '') fileError(t.file, t.lines[r], `column "${label}" is empty`);
    return raw;
  });
  if (raws.every((s) => CLASS_ID_RE.test(s))) {
    let max = 0;
    raws.forEach((s, r) => {
      const v = Number(s);
      if (v >= MAX_CLASSES) fileError(t.file, t.lines[r], `column "${label}": class id ${s} is too large (class ids must be 0..C-1, C <= ${MAX_CLASSES})`);
      if (v > max) max = v;
    });
    const C = max + 1;
    if (C < 2) fileError(t.file, undefined, `column "${label}": every label is 0; classification needs at least 2 classes`);
    const names = Array.from({ length: C }, (_, c) => String(c));
    return {
      names,
      idOf: (tt, r, raw) => {
        if (!CLASS_ID_RE.test(raw) || Number(raw) >= C) {
          fileError(tt.file, tt.lines[r], `column "${label}": "${raw}" is not a class of the training file (class ids 0..${C - 1})`);
        }
        return Number(raw);
      },
    };
  }
  const distinct = [...new Set(raws)].sort();
  if (distinct.every((s) => NUMBER_RE.test(s))) {
    fileError(t.file, undefined, `column "${label}": the labels are numbers but not all non-negative integers; ` +
      `for numeric targets set task: 'regression', for classes use ids 0..C-1 or names`);
  }
  if (distinct.length < 2) fileError(t.file, undefined, `column "${label}": only one class ("${distinct[0]}"); classification needs at least 2`);
  const ids = new Map(distinct.map((s, i) => [s, i]));
  return {
    names: distinct,
    idOf: (tt, r, raw) => {
      const id = ids.get(raw);
      if (id === undefined) fileError(tt.file, tt.lines[r], `column "${label}": "${raw}" is not a class of the training file`);
      return id;
    },
  };
}

function selectRows(src: Float64Array, width: number, rows: ArrayLike<number>): Float64Array {
  const out = new Float64Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i] * width, (rows[i] + 1) * width), i * width);
  return out;
}

/**
 * Load the CSV data of a spec (as parsed by parseCsvDataSpec or checked
 * here). Every problem with a file throws DPT_ERR_DATASET naming the file,
 * the line and the column.
 */
export async function loadCsv(specInput: CsvDataSpec, opts: CsvLoadOptions = {}): Promise<CsvData> {
  const spec = parseCsvDataSpec(specInput);
  const baseDir = opts.baseDir ?? process.cwd();
  const task = spec.task ?? 'classification';
  const trainT = await readTable(resolve(baseDir, spec.train), spec.train);

  const labelCol = columnIndex(trainT, spec.label, 'label');
  const features = spec.features ?? trainT.header.filter((c) => c !== spec.label);
  if (features.length === 0) fileError(trainT.file, 1, `no feature columns besides the label "${spec.label}"`);
  if (features.includes(spec.label)) throw dptError('DPT_ERR_CONFIG', `data.features: the label column "${spec.label}" cannot also be a feature`);
  if (new Set(features).size !== features.length) throw dptError('DPT_ERR_CONFIG', `data.features: a column is listed twice`);
  const F = features.length;

  const classes = task === 'classification' ? classesOf(trainT, labelCol, spec.label) : undefined;
  const readTargets = (t: RawTable): Float64Array => {
    const col = columnIndex(t, spec.label, 'label');
    const out = new Float64Array(t.rows.length);
    for (let r = 0; r < t.rows.length; r++) {
      const raw = t.rows[r][col];
      if (classes !== undefined) {
        if (raw === '') fileError(t.file, t.lines[r], `column "${spec.label}" is empty`);
        out[r] = classes.idOf(t, r, raw);
      } else {
        out[r] = parseNumber(t, r, spec.label, raw);
      }
    }
    return out;
  };

  let trX = readFeatures(trainT, features);
  let trY = readTargets(trainT);
  let teX: Float64Array | undefined;
  let teY: Float64Array | undefined;
  const base = basename(spec.train);
  let trainName = base;
  let testName = '';

  if (spec.test !== undefined) {
    const testT = await readTable(resolve(baseDir, spec.test), spec.test);
    teX = readFeatures(testT, features);
    teY = readTargets(testT);
    testName = basename(spec.test);
  } else if (spec.testFraction !== undefined) {
    const n = trY.length;
    const nTest = Math.round(n * spec.testFraction);
    if (nTest < 1 || nTest > n - 1) {
      fileError(trainT.file, undefined, `testFraction ${spec.testFraction} of ${n} rows leaves ${nTest} test rows and ${n - nTest} training rows; both need at least one`);
    }
    const perm = epochPermutation(CSV_SPLIT_SEED, 0, n);
    const isTest = new Uint8Array(n);
    for (let i = 0; i < nTest; i++) isTest[perm[i]] = 1;
    const testRows: number[] = [];
    const trainRows: number[] = [];
    for (let r = 0; r < n; r++) (isTest[r] ? testRows : trainRows).push(r);
    teX = selectRows(trX, F, testRows);
    teY = selectRows(trY, 1, testRows);
    trX = selectRows(trX, F, trainRows);
    trY = selectRows(trY, 1, trainRows);
    trainName = `${base}:train`;
    testName = `${base}:test`;
  }

  let standardization: CsvData['standardization'];
  if (spec.standardize === true) {
    const nTr = trY.length;
    const mean = new Array<number>(F).fill(0);
    const scale = new Array<number>(F).fill(0);
    for (let r = 0; r < nTr; r++) for (let j = 0; j < F; j++) mean[j] += trX[r * F + j];
    for (let j = 0; j < F; j++) mean[j] /= nTr;
    for (let r = 0; r < nTr; r++) {
      for (let j = 0; j < F; j++) {
        const d = trX[r * F + j] - mean[j];
        scale[j] += d * d;
      }
    }
    for (let j = 0; j < F; j++) {
      const std = Math.sqrt(scale[j] / nTr);
      scale[j] = std > 0 ? std : 1; // NOTE: a constant feature is only centered
    }
    const apply = (x: Float64Array): void => {
      for (let i = 0; i < x.length; i++) {
        const j = i % F;
        x[i] = (x[i] - mean[j]) / scale[j];
      }
    };
    apply(trX);
    if (teX !== undefined) apply(teX);
    standardization = { mean, scale };
  }

  const make = (name: string, x: Float64Array, y: Float64Array): Dataset => {
    const ds: Dataset = {
      name,
      x: Float32Array.from(x),
      y: Float32Array.from(y),
      n: y.length,
      xShape: [F],
      yShape: classes !== undefined ? [] : [1],
      featureNames: features.slice(),
    };
    if (classes !== undefined) ds.numClasses = classes.names.length;
    validateDataset(ds);
    return ds;
  };

  const out: CsvData = { train: make(trainName, trX, trY), task, featureNames: features.slice() };
  if (teX !== undefined && teY !== undefined) out.test = make(testName, teX, teY);
  if (classes !== undefined) out.classNames = classes.names;
  if (standardization !== undefined) out.standardization = standardization;
  return out;
}
