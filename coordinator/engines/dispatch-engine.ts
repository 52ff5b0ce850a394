// The engine over a dispatcher (src/dispatch/): worker threads, network
// processes and browser tabs alike, each step one range [0, K) of the batch.
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { shardCount } from '../../src/train/batch.js';
import type { HandoffStats } from '../../node/threads/transport.js';
import type { EngineOutcome, GradientEngine } from './engine.js';

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

