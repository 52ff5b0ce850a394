// The default engine (neither --workers nor the config's `workers`): the
// worker threads or the coordinator's own thread, whichever computes this
// run's steps faster on this machine, measured rather than guessed.
//
// Why measure: the threads pay a fixed cost per step (handing out the
// ranges, publishing the weights, combining the partial sums) that a large
// step hides and a tiny one does not: a 20 us step of a 4-16-3 network is
// only slower on threads, a 4 ms MLP step twice as fast. Where the line
// falls depends on the model, the batch, the kernels and the machine.
//
// How: the first steps alternate between the two engines (WARMUP steps of
// each are not counted: caches, first compiles), then the engine with the
// lower median time per step over PROBE steps each computes the rest of the
// run; if that is this thread, the threads are closed. Which engine
// computed a step changes no bit (DESIGN.md principle 3), so switching
// mid-run is free. The choice and the figures it was made on go to the log
// (the progress lines) and the run's summary.
import { systemClock, type Clock } from './dispatch/clock.js';
import type { WorkerSummary } from './dispatch/dispatcher.js';
import type { EngineOutcome, EngineStats, GradientEngine, WorkersChoice } from './engine.js';

/** Steps of each engine not counted, then counted, before choosing. */
const WARMUP = 2;
const PROBE = 8;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `local` computes in this thread, `threads` on `threads.workers` worker
 * threads; both over the same weights buffer. `log` gets the choice; the
 * step times are read from `clock` (a fake one in tests).
 */
export function createAutoEngine(
  local: GradientEngine, threads: GradientEngine, log: (line: string) => void, clock: Pick<Clock, 'now'> = systemClock,
): GradientEngine {
  const times = { local: [] as number[], threads: [] as number[] };
  const threadCount = threads.workers;
  let chosen: GradientEngine | null = null;
  let choice: WorkersChoice | undefined;
  let threadsClosed = false;
  let probes = 0;

  async function closeThreads(outcome?: EngineOutcome): Promise<void> {
    if (threadsClosed) return;
    threadsClosed = true;
    await threads.close(outcome);
  }

  async function choose(): Promise<void> {
    const l = median(times.local);
    const t = median(times.threads);
    const onThreads = t < l;
    chosen = onThreads ? threads : local;
    const figures = `a step's gradient took ${t.toFixed(2)} ms on ${threadCount} worker thread${threadCount === 1 ? '' : 's'} ` +
      `and ${l.toFixed(2)} ms in the coordinator's thread (median of ${PROBE} steps each)`;
    choice = onThreads
      ? { workers: threadCount, reason: `${figures}: training on the ${threadCount} threads` }
      : { workers: 0, reason: `${figures}: training in the coordinator's thread (as --workers 0)` };
    log(`workers: ${choice.reason}`);
    if (!onThreads) await closeThreads();
  }

  return {
    get workers() { return chosen === local ? 0 : threads.workers; },
    async batchGradient(job, out) {
      if (chosen !== null) return chosen.batchGradient(job, out);
      const n = probes++;
      const which = n % 2 === 0 ? 'threads' : 'local';
      const engine = which === 'threads' ? threads : local;
      const t0 = clock.now();
      await engine.batchGradient(job, out);
      if (n >= 2 * WARMUP) times[which].push(clock.now() - t0);
      if (times.local.length >= PROBE && times.threads.length >= PROBE) await choose();
    },
    stats(): EngineStats {
      const none = { steps: 0, dispatchMs: 0, combineMs: 0, waitMs: 0, workerMs: 0, reassigned: 0 };
      return chosen === local ? none : threads.stats?.() ?? none;
    },
    summaries(): WorkerSummary[] {
      return chosen === local ? [] : threads.summaries?.() ?? [];
    },
    stepDone(report) {
      if (chosen !== local) threads.stepDone?.(report);
    },
    choice: () => choice,
    async close(outcome) {
      await closeThreads(outcome);
      await local.close(outcome);
    },
  };
}
