// A gradient engine computes the reduced gradient sum of one global batch.
// The training loop only asks for that; whether the micro-shards run in this
// thread, in worker threads or on other machines is the engine's business.
import type { Dataset } from '../src/data/dataset.js';
import type { Loss } from '../src/losses/loss.js';
import type { Model } from '../src/model/model.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { computeBatch, shardCount, type BatchData } from '../src/train/batch.js';

export interface BatchJob {
  epoch: number;
  step: number;
  /** Dataset indices of the global batch, in order. */
  indices: Uint32Array;
  /** Micro-shards of this batch. */
  microShards: number;
}

/** Where a step's time went, in the coordinator's thread (cumulative, ms). */
export interface EngineStats {
  steps: number;
  /** Publishing the weights version and dispatching the ranges (the broadcast). */
  dispatchMs: number;
  /** Combining the partial sums in the tree order (the reduction). */
  combineMs: number;
  /** Waiting for the workers. */
  waitMs: number;
  /** The workers' own compute time of the accepted tasks, summed over workers (from their replies). */
  workerMs?: number;
}

export interface GradientEngine {
  /** Threads or processes doing the work (0: the coordinator's own thread). */
  readonly workers: number;
  /**
   * Writes the root sum (gradient sums, statistics, loss sum, count) into out.
   * `model.params` holds the current weights: the coordinator writes them only
   * between calls, and each call publishes them (a new weights version).
   */
  batchGradient(job: BatchJob, out: Float32Array): Promise<void>;
  /** Timing of the coordinator's own share of the steps so far, if the engine measures it. */
  stats?(): EngineStats;
  close(): Promise<void>;
}

/** Copies the rows of `indices` into a batch buffer. */
export function gatherRows(ds: Dataset, indices: ArrayLike<number>, xOut: Float32Array, yOut: Float32Array): void {
  const xs = ds.x.length / ds.n;
  const ys = ds.y.length / ds.n;
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    xOut.set(ds.x.subarray(i * xs, (i + 1) * xs), r * xs);
    yOut.set(ds.y.subarray(i * ys, (i + 1) * ys), r * ys);
  }
}

/** Everything in the coordinator's thread (`--workers 0`). */
export function createLocalEngine(model: Model, loss: Loss, train: Dataset, seed: number, maxBatch: number): GradientEngine {
  const xs = train.x.length / train.n;
  const ys = train.y.length / train.n;
  // In the kernels' memory (WebAssembly's with the wasm kernels), so they read the batch in place.
  const xBuf = allocFloats(maxBatch * xs);
  const yBuf = allocFloats(maxBatch * ys);
  const scratch: Float32Array[] = [];
  return {
    workers: 0,
    async batchGradient(job, out) {
      const rows = job.indices.length;
      gatherRows(train, job.indices, xBuf, yBuf);
      const data: BatchData = { x: xBuf.subarray(0, rows * xs), y: yBuf.subarray(0, rows * ys), rows, xSize: xs, ySize: ys };
      computeBatch(model, loss, data, shardCount(rows, job.microShards), { seed, step: job.step }, out, scratch);
    },
    async close() {},
  };
}
