// A gradient engine computes the reduced gradient sum of one global batch.
// The training loop only asks for that; whether the micro-shards run in this
// thread (createLocalEngine) or on workers of any kind through the
// dispatcher (createDispatchEngine) is the engine's business.
import type { Dataset } from '../../src/data/dataset.js';
import type { Loss } from '../../src/losses/loss.js';
import type { Model } from '../../src/model/model.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { computeBatch, shardCount, type BatchData } from '../../src/train/batch.js';
import type { Dispatcher, DispatchStats, WorkerSummary } from '../../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import type { HandoffStats } from '../../node/threads/transport.js';
import type { LoopStats } from './step-loop.js';
import type { StepResult } from '../../src/train/step.js';
import type { Stepper } from '../run/trainer.js';

export interface BatchJob {
  epoch: number;
  step: number;
  /** Dataset indices of the global batch, in order. */
  indices: Uint32Array;
  /** Micro-shards of this batch. */
  microShards: number;
}

/** Where a step's time went (cumulative, ms): the coordinator's own (DispatchStats) and, with worker threads, the hand-offs and the step loop. */
export type EngineStats = DispatchStats & { handoff?: HandoffStats; loop?: LoopStats };

/** What the default engine chose between worker threads and the coordinator's thread, and why (auto-engine.ts). */
export interface WorkersChoice {
  /** Worker threads the run computes on from then on (0: the coordinator's thread). */
  workers: number;
  reason: string;
}

/** What one step did: applyStep's result and the learning rate it used. */
export interface StepOutcome {
  result: StepResult;
  lr: number;
}

export interface GradientEngine {
  /** Workers doing the work now (0: the coordinator's own thread). */
  readonly workers: number;
  /**
   * Writes the root sum (gradient sums, statistics, loss sum, count) into out.
   * `model.params` holds the current weights: the coordinator writes them only
   * between calls, and each call publishes them (a new weights version).
   */
  batchGradient(job: BatchJob, out: Float32Array): Promise<void>;
  /**
   * Computes the batch's reduced sum and applies the step to the stepper's
   * model and optimizer state itself (engines whose workers also split the
   * update among them); engines without it leave the update to the caller
   * (runStep). `next`, the job of the following step when the run goes on,
   * lets the workers start on it before they are asked: the weights are
   * written only once that step is asked for, never before this call returns.
   */
  step?(job: BatchJob, stepper: Stepper, next?: BatchJob): Promise<StepOutcome>;
  /** Timing of the coordinator's own share of the steps so far, if the engine measures it. */
  stats?(): EngineStats;
  /** Every worker that took part, with its figures (engines with workers). */
  summaries?(): WorkerSummary[];
  /** Bytes on the wire to and from network workers so far (engines with a network transport). */
  wireBytes?(): { sent: number; received: number };
  /** The default engine's choice, once made (auto-engine.ts). */
  choice?(): WorkersChoice | undefined;
  /** A step was applied (metrics). */
  stepDone?(report: { seconds: number; samples: number; loss: number }): void;
  /** Stops the workers: `finished` and `failed` end the run for them, `interrupted` asks them to come back to a resumed run. */
  close(outcome?: EngineOutcome): Promise<void>;
}

export interface EngineOutcome {
  kind: 'finished' | 'interrupted' | 'failed';
  reason: string;
}

/**
 * The engine over a dispatcher: each step publishes the weights (a new
 * version on the board) and asks the dispatcher for the whole batch's range
 * [0, K), whose one aligned block is the root sum.
 */
export function createDispatchEngine(
  dispatcher: Dispatcher, board: WeightsBoard, close: (outcome: EngineOutcome) => Promise<void>,
  hooks: Pick<GradientEngine, 'stepDone' | 'wireBytes'> & { handoff?: () => HandoffStats } = {},
): GradientEngine {
  const { handoff, ...rest } = hooks;
  return {
    ...rest,
    get workers() { return dispatcher.liveCount(); },
    async batchGradient(job, out) {
      const rows = job.indices.length;
      const k = shardCount(rows, job.microShards);
      board.version++;
      await dispatcher.computeRange({ step: job.step, version: board.version, k, rows, start: 0, end: k, indices: job.indices }, () => out);
    },
    stats: () => ({ ...dispatcher.stats(), ...(handoff === undefined ? {} : { handoff: handoff() }) }),
    summaries: () => dispatcher.summaries(),
    async close(outcome = { kind: 'finished', reason: 'the run is over' }) {
      dispatcher.close();
      await close(outcome);
    },
  };
}

/**
 * One training step on any engine: the engine's own step when it has one,
 * else its reduced sum (into `sum`, scratch) applied by the stepper here.
 */
export async function runStep(engine: GradientEngine, job: BatchJob, stepper: Stepper, sum: Float32Array, next?: BatchJob): Promise<StepOutcome> {
  if (engine.step !== undefined) return engine.step(job, stepper, next);
  await engine.batchGradient(job, sum);
  return stepper.apply(job.step, sum);
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
