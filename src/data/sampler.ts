// Which samples make up each minibatch: a deterministic shuffle per epoch,
// a pure function of (seed, epoch) through the counter RNG (docs/design.md
// principle 4), so every process that knows the seed agrees on every batch,
// and a resumed run sees the same batches as an uninterrupted one.
//
// An epoch visits the n samples in the order epochPermutation(seed, epoch, n),
// cut into consecutive batches of batchSize. The last batch of an epoch holds
// the n mod batchSize leftover samples: it is KEPT (every sample is seen once
// per epoch), and the mean gradient divides by the number of samples actually
// in the batch, so a short batch is weighted correctly. Because a global batch
// is cut into K micro-shards and splitMicroShards refuses K > rows, a caller
// can pass minLastBatch = K: a trailing batch shorter than that is then
// dropped for this epoch (those few samples wait for another epoch, which
// orders the samples differently).

import { dptError } from '../errors.js';
import { hash32 } from '../random/counter.js';

/** Stream tag that keeps the shuffle's draws apart from every other use of (seed, epoch, ...). */
const SHUFFLE_TAG = 0x53485546; // "SHUF"
const TWO_32 = 4294967296;

function checkCounter(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v >= TWO_32) {
    throw dptError('DPT_ERR_CONFIG', `${what} must be an integer in 0..2^32-1, got ${v}`);
  }
}

function checkPositive(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw dptError('DPT_ERR_CONFIG', `${what} must be a positive integer, got ${v}`);
}

/**
 * The order in which epoch `epoch` visits samples 0..n-1: a Fisher-Yates
 * shuffle whose i-th swap partner (i = n-1 down to 1) is j = floor(u * (i+1))
 * with u a 53-bit uniform built from hash32(seed, epoch, i, SHUFFLE_TAG, 0)
 * (high 32 bits) and hash32(seed, epoch, i, SHUFFLE_TAG, 1) >>> 11 (low 21).
 */
export function epochPermutation(seed: number, epoch: number, n: number): Uint32Array {
  checkCounter('seed', seed);
  checkCounter('epoch', epoch);
  checkCounter('n (number of samples)', n);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i >= 1; i--) {
    const hi = hash32(seed, epoch, i, SHUFFLE_TAG, 0);
    const lo = hash32(seed, epoch, i, SHUFFLE_TAG, 1) >>> 11;
    const u = (hi * 2097152 + lo) / 9007199254740992; // [0, 1), 53 bits
    const j = Math.floor(u * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

export interface BatchOptions {
  /**
   * A trailing partial batch with fewer rows than this is dropped (default 1:
   * always keep it). Pass the micro-shard count K to keep every batch
   * splittable into K non-empty micro-shards.
   */
  minLastBatch?: number;
}

/** Number of batches per epoch: ceil(n / batchSize), less one if the last batch is dropped. */
export function stepsPerEpoch(n: number, batchSize: number, opts: BatchOptions = {}): number {
  checkPositive('batchSize', batchSize);
  const minLast = opts.minLastBatch ?? 1;
  checkPositive('minLastBatch', minLast);
  const full = Math.floor(n / batchSize);
  const rest = n - full * batchSize;
  return full + (rest >= minLast && rest > 0 ? 1 : 0);
}

/**
 * The sample indices of every minibatch of an epoch, in order. Each batch
 * is a view into one permutation array (no copy).
 */
export function batchesOfEpoch(seed: number, epoch: number, n: number, batchSize: number, opts: BatchOptions = {}): Uint32Array[] {
  const steps = stepsPerEpoch(n, batchSize, opts);
  const perm = epochPermutation(seed, epoch, n);
  const out: Uint32Array[] = [];
  for (let b = 0; b < steps; b++) out.push(perm.subarray(b * batchSize, Math.min(n, (b + 1) * batchSize)));
  return out;
}

/** Where a global step falls: its epoch and its batch within that epoch. */
export function locateStep(step: number, n: number, batchSize: number, opts: BatchOptions = {}): { epoch: number; batch: number } {
  if (!Number.isInteger(step) || step < 0) throw dptError('DPT_ERR_CONFIG', `step must be a non-negative integer, got ${step}`);
  const steps = stepsPerEpoch(n, batchSize, opts);
  if (steps === 0) throw dptError('DPT_ERR_CONFIG', `the dataset has ${n} samples: not one batch of ${batchSize} (minLastBatch ${opts.minLastBatch ?? 1})`);
  return { epoch: Math.floor(step / steps), batch: step % steps };
}

/**
 * The batch of a global step, caching the current epoch's batches (one
 * permutation of n per epoch). Purely a function of (seed, n, batchSize,
 * options, step): a resumed run needs only the step.
 */
export class BatchSampler {
  private cachedEpoch = -1;
  private cached: Uint32Array[] = [];
  readonly stepsPerEpoch: number;

  constructor(readonly seed: number, readonly n: number, readonly batchSize: number, readonly opts: BatchOptions = {}) {
    checkCounter('seed', seed);
    this.stepsPerEpoch = stepsPerEpoch(n, batchSize, opts);
  }

  /** The sample indices of global step `step` (a view; do not modify). */
  batch(step: number): { epoch: number; batch: number; indices: Uint32Array } {
    const { epoch, batch } = locateStep(step, this.n, this.batchSize, this.opts);
    if (epoch !== this.cachedEpoch) {
      this.cached = batchesOfEpoch(this.seed, epoch, this.n, this.batchSize, this.opts);
      this.cachedEpoch = epoch;
    }
    return { epoch, batch, indices: this.cached[batch] };
  }
}
