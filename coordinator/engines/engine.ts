// A gradient engine computes the reduced gradient sum of one global batch.
// The training loop only asks for that; whether the micro-shards run in this
// thread (local.ts), on workers of any kind through the dispatcher
// (dispatch-engine.ts), in the threads' own step loop (step-loop.ts) or
// whichever of those measures faster (auto.ts) is the engine's business.
import type { DispatchStats, WorkerSummary } from '../../src/dispatch/contract.js';
import type { HandoffStats } from '../../node/threads/transport.js';
import type { CollectiveStats } from '../../src/collective/conductor.js';
import type { BatchJob, Stepper, StepOutcome } from '../run/stepper.js';

export type { BatchJob, StepOutcome, WorkerSummary };

/** Where the step loop's time went (cumulative ms; per thread, averaged over the threads). */
export interface LoopStats {
  steps: number;
  /** Copying the weights and computing the blocks. */
  computeMs: number;
  /** Waiting for the other threads' blocks (and the step's permit). */
  waitMs: number;
  /** Reducing and applying the thread's slice. */
  applyMs: number;
  /** The coordinator's own: writing slots, permits, the penalty. */
  postMs: number;
  /** Steps that went to the dispatcher instead. */
  fallbacks: number;
}


/** Where a step's time went (cumulative, ms): the coordinator's own (DispatchStats) and, with worker threads, the hand-offs and the step loop. */
export type EngineStats = DispatchStats & { handoff?: HandoffStats; loop?: LoopStats; collective?: CollectiveStats };

/** What the default engine chose between worker threads and the coordinator's thread, and why (auto-engine.ts). */
export interface WorkersChoice {
  /** Worker threads the run computes on from then on (0: the coordinator's thread). */
  workers: number;
  reason: string;
}

/** How the steps of a run with network workers were reduced: among the workers (the collective), on the star, or both. */
export interface TopologyReport {
  ran: 'star' | 'collective' | 'mixed';
  collectiveSteps: number;
  starSteps: number;
  wire: 'f32' | 'bf16';
  reason: string;
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
  /** Which topology ran the steps (the collective engine, issue 21), for the summary. */
  topology?(): TopologyReport;
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
 * One training step on any engine: the engine's own step when it has one,
 * else its reduced sum (into `sum`, scratch) applied by the stepper here.
 */
export async function runStep(engine: GradientEngine, job: BatchJob, stepper: Stepper, sum: Float32Array, next?: BatchJob): Promise<StepOutcome> {
  if (engine.step !== undefined) return engine.step(job, stepper, next);
  await engine.batchGradient(job, sum);
  return stepper.apply(job.step, sum);
}

