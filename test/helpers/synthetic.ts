// A small synthetic training problem for engine and transport tests: BatchNorm
// and dropout (so ghost statistics and counter-based masks are exercised),
// an uneven batch (23 rows) over uneven micro-shards (K = 7), and the
// single-thread sums every distributed run must reproduce bit for bit.
import type { Dataset } from '../../src/data/dataset.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel, type Model } from '../../src/model/model.js';
import { uniform } from '../../src/random/counter.js';
import { gradLength } from '../../src/train/step.js';
import { createLocalEngine } from '../../coordinator/engines/local.js';

export const N = 97;
export const F = 12;
export const C = 3;
export const BATCH = 23;
export const K = 7;
export const SEED = 9;
export const LOSS = 'softmax_cross_entropy';

export const SPEC = {
  inputShape: [F],
  layers: [
    { type: 'dense', units: 16 },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: C },
  ],
};

export function dataset(): Dataset {
  const x = new Float32Array(N * F);
  const y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < F; j++) x[i * F + j] = uniform(11, i, j) * 2 - 1;
    y[i] = i % C;
  }
  return { name: 'synthetic', x, y, n: N, xShape: [F], yShape: [], numClasses: C };
}

/** The model with its initial weights, over `params` if given (e.g. a SharedArrayBuffer). */
export function model(alloc?: (n: number) => Float32Array): Model {
  const m = alloc === undefined ? buildModel(SPEC) : buildModel(SPEC, { params: alloc(buildModel(SPEC).size) });
  initModel(m, 5);
  return m;
}

export function batchIndices(step: number): Uint32Array {
  const idx = new Uint32Array(BATCH);
  for (let r = 0; r < BATCH; r++) idx[r] = (step * 31 + r * 7) % N;
  return idx;
}

/** Moves the weights a little, the same way on both sides (stands in for the SGD step). */
export function nudge(m: Model, sum: Float32Array): void {
  for (let i = 0; i < m.numTrainable; i++) m.params[i] = Math.fround(m.params[i] - Math.fround(0.01 * sum[i]));
}

/** The single-thread engine's sums for `steps` steps, nudging the weights in between. */
export function reference(steps: number): Float32Array[] {
  const m = model();
  const engine = createLocalEngine(m, getLoss(LOSS), dataset(), SEED, BATCH);
  const out: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const sum = new Float32Array(gradLength(m));
    void engine.batchGradient({ epoch: 0, step: s, indices: batchIndices(s), microShards: K }, sum);
    out.push(sum.slice());
    nudge(m, sum);
  }
  return out;
}

/** The bit patterns of a float array, for exact comparisons with readable diffs. */
export function bits(a: Float32Array): number[] {
  return [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
}
