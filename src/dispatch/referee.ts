// The referee: the coordinator computing a range itself, with the same core
// and kernels as every worker (so the same bits), for --verify-fraction. It
// decides disputes between two workers, and checks a worker that has no
// other worker to check it. Built on first use: a run without disputes
// allocates nothing for it.
import { alignedBlocks } from '../reduce/tree.js';
import type { Dataset } from '../data/dataset.js';
import { getLoss } from '../losses/index.js';
import { buildModel } from '../model/model.js';
import { createRangeWorker, type RangeWorker } from '../train/range.js';
import type { RangeJob } from './dispatcher.js';
import type { WeightsBoard } from './weights-board.js';

export interface RefereeOptions {
  model: unknown;
  loss: string;
  seed: number;
  train: Dataset;
  maxBatch: number;
  /** The step's weights: the referee reads them from here. */
  board: WeightsBoard;
}

/** A function computing the aligned-block sums of a range, one after the other, with the board's weights. */
export function createReferee(opts: RefereeOptions): (job: RangeJob) => Float32Array {
  let worker: RangeWorker | null = null;
  return (job) => {
    if (worker === null) {
      const { train } = opts;
      worker = createRangeWorker(buildModel(opts.model), getLoss(opts.loss), opts.seed, {
        x: train.x, y: train.y, n: train.n, xSize: train.x.length / train.n, ySize: train.y.length / train.n,
      }, opts.maxBatch);
    }
    const w = worker;
    w.setWeights(job.version, opts.board.params);
    const problem = w.check(job);
    if (problem !== null) throw new Error(`referee: ${problem}`);
    const g = w.gradLen;
    const sums = new Float32Array(alignedBlocks(job.k, job.start, job.end).length * g);
    w.compute(job, (b, _node, sum) => sums.set(sum, b * g));
    return sums;
  };
}
