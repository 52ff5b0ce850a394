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
// How: the first steps go to the two engines in turns, in blocks of
// BLOCK steps (so the threads can work a step ahead within a block). The
// first WARM blocks of each are not counted (the threads' code is not
// compiled yet: their first steps are several times slower), nor are the
// first SETTLE steps of a block (a transition: the threads finish what they
// were doing and start their loop again); then the engine with the lower
// median time per step over the PROBE steps counted of each computes the
// rest of the run; if that is this thread, the threads are closed. Which
// engine computed a step changes no bit (DESIGN.md principle 3), so
// switching mid-run is free. The choice and the figures it was made on go
// to the log (the progress lines) and the run's summary.
import { systemClock, type Clock } from './dispatch/clock.js';
import type { WorkerSummary } from './dispatch/dispatcher.js';
import { runStep, type EngineOutcome, type EngineStats, type GradientEngine, type WorkersChoice } from './engine.js';
import { allocFloats } from '../src/tensor/alloc.js';

/** Steps in a row on one engine while measuring; steps of a block not counted; blocks of each not counted; steps counted per engine before choosing. */
const BLOCK = 6;
const SETTLE = 2;
const WARM = 2;
const PROBE = 8;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `local` computes in this thread, `threads` on `threads.workers` worker
 * threads; both over the same weights and optimizer state. `log` gets the
 * choice; the step times are read from `clock` (a fake one in tests).
 */
export function createAutoEngine(
  local: GradientEngine, threads: GradientEngine, gradLen: number, log: (line: string) => void, clock: Pick<Clock, 'now'> = systemClock,
): GradientEngine {
  const times = { local: [] as number[], threads: [] as number[] };
  const threadCount = threads.workers;
  const sum = allocFloats(gradLen);
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
    const figures = `a step took ${t.toFixed(2)} ms on ${threadCount} worker thread${threadCount === 1 ? '' : 's'} ` +
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
      await (chosen ?? threads).batchGradient(job, out);
    },
    async step(job, stepper, next) {
      if (chosen !== null) return runStep(chosen, job, stepper, sum, next);
      const n = probes++;
      const which = Math.floor(n / BLOCK) % 2 === 0 ? 'threads' : 'local';
      const engine = which === 'threads' ? threads : local;
      const t0 = clock.now();
      const outcome = await runStep(engine, job, stepper, sum, (n + 1) % BLOCK === 0 ? undefined : next);
      if (n % BLOCK >= SETTLE && n >= 2 * WARM * BLOCK) times[which].push(clock.now() - t0);
      if (times.local.length >= PROBE && times.threads.length >= PROBE) await choose();
      return outcome;
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
