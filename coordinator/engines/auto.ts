// The default engine (neither --workers nor the config's `workers`): the
// worker threads or the coordinator's own thread, whichever computes this
// run's steps faster on this machine, measured rather than guessed.
//
// Why measure: the threads pay a cost per step (handing the step over,
// waiting for each other, each reducing and updating a slice: about 0.1 ms
// here) and a cost per run (starting, compiling their code) that a long
// step hides and a short one does not: a 0.03 ms step of a 4-16-3 network
// is only slower on threads, a 3 ms MLP step nearly twice as fast. Where
// the line falls depends on the model, the batch, the kernels and the
// machine.
//
// How:
//   1. the first steps run in the coordinator's thread; once FIRST of them
//      are timed (after LEAD_IN, its first steps: compiling), a median under
//      CHEAP_MS ends it there: the threads could not gain what they cost,
//      and are never started;
//   2. otherwise the threads start (in the background: the steps go on
//      here meanwhile), then the steps go to the two engines in turns, in
//      blocks of BLOCK steps (so the threads can work a step ahead within a
//      block). The first WARM blocks of each are not counted (the threads'
//      code is not compiled yet: their first steps are several times
//      slower), nor are the first SETTLE steps of a block (a transition: the
//      threads finish what they were doing and start their loop again);
//   3. the engine with the lower median time per step over the last PROBE
//      steps counted of each computes the rest of the run; if that is this
//      thread, the threads are closed. But a verdict against the threads
//      waits for their next block (up to MAX_EXTRA blocks more) until they
//      have computed for MIN_THREADS_MS in all, and while they still get
//      faster from one block to the next (by IMPROVING or more): each
//      thread compiles its own code, on the cores it computes on, and
//      measured that early the threads of the BatchNorm config took 5-6 ms
//      a step against 3.3-3.5 here and were dropped, though warm they take
//      1.7.
// Which engine computed a step changes no bit (docs/design.md principle 3), so
// switching mid-run is free. The choice and the figures it was made on go
// to the log (the progress lines) and the run's summary.
import { systemClock, type Clock } from '../../src/dispatch/clock.js';
import { noDispatchStats, type WorkerSummary } from '../../src/dispatch/contract.js';
import { runStep, type BatchJob, type EngineOutcome, type EngineStats, type GradientEngine, type StepOutcome, type WorkersChoice } from './engine.js';
import type { Stepper } from '../run/stepper.js';
import { allocFloats } from '../../src/tensor/alloc.js';

/** Steps here not timed, then timed, at first; a median below CHEAP_MS keeps the run here. */
const LEAD_IN = 4;
const FIRST = 8;
const CHEAP_MS = 0.2;
/** Steps in a row on one engine while measuring; steps of a block not counted; blocks of each not counted; steps counted per engine before choosing. */
const BLOCK = 6;
const SETTLE = 2;
const WARM = 2;
const PROBE = 8;
/** Before this much time computing, or while a block is this much faster than the one before, the threads are still warming up; at most MAX_EXTRA blocks more then. */
const MIN_THREADS_MS = 100;
const IMPROVING = 0.05;
const MAX_EXTRA = 40;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `local` computes in this thread; startThreads() starts the engine of
 * `threadCount` worker threads (only if the steps are long enough). Both
 * work on the same weights and optimizer state. `log` gets the choice; the
 * step times are read from `clock` (a fake one in tests).
 */
export function createAutoEngine(
  local: GradientEngine, threadCount: number, startThreads: () => Promise<GradientEngine>, gradLen: number,
  log: (line: string) => void, clock: Pick<Clock, 'now'> = systemClock,
): GradientEngine {
  const first: number[] = [];
  const times = { local: [] as number[], threads: [] as number[] };
  const sum = allocFloats(gradLen);
  let threads: GradientEngine | null = null;
  let starting: Promise<void> | null = null;
  let chosen: GradientEngine | null = null;
  let choice: WorkersChoice | undefined;
  let threadsClosed = false;
  let probes = 0;
  /** Thread blocks measured past the first verdict, while they were still warming up. */
  let extra = 0;
  /** Time the threads' steps took so far, counted or not. */
  let threadsMs = 0;
  let localSteps = 0;

  const threadsLabel = `${threadCount} worker thread${threadCount === 1 ? '' : 's'}`;

  function keepLocal(reason: string): void {
    chosen = local;
    choice = { workers: 0, reason: `${reason}: training in the coordinator's thread (as --workers 0)` };
    log(`workers: ${choice.reason}`);
  }

  async function closeThreads(outcome?: EngineOutcome): Promise<void> {
    if (threadsClosed) return;
    threadsClosed = true;
    await starting;
    await threads?.close(outcome);
  }

  /** Whether the threads' last block of counted steps was IMPROVING faster than the block before. */
  function warmingUp(): boolean {
    const per = BLOCK - SETTLE;
    const n = times.threads.length;
    if (n < 2 * per) return false;
    return median(times.threads.slice(n - per)) < (1 - IMPROVING) * median(times.threads.slice(n - 2 * per, n - per));
  }

  /** Chooses on the last PROBE steps of each, unless the threads are behind and still warming up. */
  async function choose(): Promise<void> {
    const l = median(times.local.slice(-PROBE));
    const t = median(times.threads.slice(-PROBE));
    if (t >= l && extra < MAX_EXTRA && (threadsMs < MIN_THREADS_MS || warmingUp())) {
      extra++;
      return;
    }
    const figures = `a step took ${t.toFixed(2)} ms on ${threadsLabel} and ${l.toFixed(2)} ms in the coordinator's thread (median of ${PROBE} steps each)`;
    if (t < l) {
      chosen = threads;
      choice = { workers: threadCount, reason: `${figures}: training on the ${threadCount} threads` };
      log(`workers: ${choice.reason}`);
    } else {
      keepLocal(figures);
      await closeThreads();
    }
  }

  /** A step here while the threads are not there (yet): timed, to decide whether to start them. */
  async function firstSteps(job: BatchJob, stepper: Stepper, next: BatchJob | undefined): Promise<StepOutcome> {
    const n = localSteps++;
    // While the threads start: a turn of the event loop per step, or their start-up messages would wait
    // for the run to end (a step here runs synchronously).
    if (starting !== null) await new Promise<void>((resolve) => setImmediate(resolve));
    const t0 = clock.now();
    const outcome = await runStep(local, job, stepper, sum, next);
    if (n >= LEAD_IN && first.length < FIRST) first.push(clock.now() - t0);
    if (first.length === FIRST && starting === null) {
      const l = median(first);
      if (l < CHEAP_MS) {
        keepLocal(`a step took ${l.toFixed(2)} ms in the coordinator's thread (median of ${FIRST}), too short for ${threadsLabel} to gain ` +
          `(they pay about 0.1 ms a step to hand it over and share the update)`);
      } else {
        starting = startThreads().then(
          (t) => { threads = t; },
          (err: Error) => { threadsClosed = true; keepLocal(`the worker threads did not start (${err.message.split('\n')[0]})`); },
        );
      }
    }
    return outcome;
  }

  return {
    get workers() { return chosen === local ? 0 : threadCount; },
    async batchGradient(job, out) {
      await (chosen ?? threads ?? local).batchGradient(job, out);
    },
    async step(job, stepper, next) {
      if (chosen !== null) return runStep(chosen, job, stepper, sum, next);
      if (threads === null) return firstSteps(job, stepper, next);
      const n = probes++;
      const which = Math.floor(n / BLOCK) % 2 === 0 ? 'threads' : 'local';
      const engine = which === 'threads' ? threads : local;
      const t0 = clock.now();
      const outcome = await runStep(engine, job, stepper, sum, (n + 1) % BLOCK === 0 ? undefined : next);
      const ms = clock.now() - t0;
      if (which === 'threads') threadsMs += ms;
      if (n % BLOCK >= SETTLE && n >= 2 * WARM * BLOCK) times[which].push(ms);
      // Once postponed, the verdict waits for the end of the threads' next block.
      const threadBlockDone = which === 'threads' && n % BLOCK === BLOCK - 1;
      if (times.local.length >= PROBE && times.threads.length >= PROBE && (extra === 0 || threadBlockDone)) await choose();
      return outcome;
    },
    stats(): EngineStats {
      const none = noDispatchStats();
      return chosen === local || threads === null ? none : threads.stats?.() ?? none;
    },
    summaries(): WorkerSummary[] {
      return chosen === local || threads === null ? [] : threads.summaries?.() ?? [];
    },
    stepDone(report) {
      if (chosen !== local) threads?.stepDone?.(report);
    },
    choice: () => choice,
    async close(outcome) {
      await closeThreads(outcome);
      await local.close(outcome);
    },
  };
}
