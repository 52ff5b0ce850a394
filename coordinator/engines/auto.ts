// The default engine (neither --workers nor the config's `workers`): the
// worker threads or the coordinator's own thread, whichever computes this
// run's steps faster on this machine, measured rather than guessed, and
// measured again as the run goes on.
//
// Why measure: the threads pay a cost per step (handing the step over,
// waiting for each other, each reducing and updating a slice: about 0.1 ms
// here) and a cost per run (starting, compiling their code) that a long
// step hides and a short one does not: a 0.03 ms step of a 4-16-3 network
// is only slower on threads, a 3 ms MLP step nearly twice as fast. Where
// the line falls depends on the model, the batch, the kernels and the
// machine, and on what else the machine runs: another process that takes
// a core halves what two threads can do, and the threads' code speeds up
// as it compiles.
//
// How:
//   1. the threads start (choose.ts starts them before the first step, as
//      for --workers N: starting them beside the first steps would slow
//      those several times); the first steps run in the coordinator's
//      thread; once FIRST of them are timed (after LEAD_IN, its first steps:
//      compiling), a median under CHEAP_MS ends it there: the threads could
//      not gain what they cost, and are closed;
//   2. otherwise the steps go to the threads (once started) in blocks of BLOCK
//      steps (the threads work a step ahead within a block) until they have
//      computed for WARM_MS (each thread compiles its own JavaScript: its
//      first steps can be several times slower), then to the two engines in
//      turns. The first SETTLE steps of a block are not counted (a
//      transition: the threads finish what they were doing and start their
//      loop again);
//   3. the first verdict, once each engine has PROBE counted steps: the
//      lower median wins (at FEW each already when one is CLEAR times the
//      other: another process on the machine can make the threads several
//      times slower, and every block on them is then lost time). A verdict
//      against the threads waits (up to MAX_EXTRA more blocks) until they
//      have two counted blocks and while their last block was still
//      IMPROVING on the one before, however clear (one slow block is often
//      their code compiling, or their waking after a block here). Only now
//      does the run say where it trains;
//   4. then the run checks its verdict: after RECHECK_FIRST steps, then
//      after twice as many each time the verdict stands (up to
//      RECHECK_MAX), and at once when the chosen engine's median step time
//      over its last 2 x PROBE steps moves by DRIFT or more from what it
//      was after the verdict (another process took a core, or gave it back;
//      the threads finished compiling), a block goes to the other engine,
//      then one to the chosen engine. The chosen engine's pace is the
//      faster of its last BLOCK - SETTLE counted steps before the check and
//      its block after: a moment's slowdown (which calls a check at once)
//      is in the first, not the second; the threads' way back from a block
//      here (several slow steps at times) is in the second, not the first.
//      If the other's median beats that pace by MARGIN, the run switches
//      (and says so); the checks then start over. A check that
//      does not switch costs what its block took beyond the chosen engine's
//      pace; checks wait while those costs exceed BUDGET of the run's step
//      time so far (a check on threads 6 times slower costs more than a
//      hundred steps' worth of gain elsewhere). The threads
//      stay started while the coordinator's thread computes (they wait,
//      blocked, costing no CPU), so a switch back costs nothing.
// Which engine computed a step changes no bit (docs/design.md principle
// 3): both work on the same weights and optimizer state, so switching
// between steps is free. The choices and their figures go to the log (the
// progress lines) and the run's summary (the last one).
import { systemClock, type Clock } from '../../src/dispatch/clock.js';
import { noDispatchStats, type WorkerSummary } from '../../src/dispatch/contract.js';
import { runStep, type BatchJob, type EngineOutcome, type EngineStats, type GradientEngine, type StepOutcome, type WorkersChoice } from './engine.js';
import type { Stepper } from '../run/stepper.js';
import { allocFloats } from '../../src/tensor/alloc.js';

/** Steps here not timed, then timed, at first; a median below CHEAP_MS keeps the run here. */
const LEAD_IN = 4;
const FIRST = 8;
const CHEAP_MS = 0.2;
/** Steps in a row on one engine while measuring; the first SETTLE of a block are not counted; counted steps per engine for a verdict. */
const BLOCK = 8;
const SETTLE = 2;
const PROBE = 12;
/** The threads' time computing before their steps count; a block this much faster than the one before is still warming up; at most MAX_EXTRA blocks more then. */
const WARM_MS = 40;
const IMPROVING = 0.05;
const MAX_EXTRA = 40;
/** Steps on the chosen engine before the first check, the most between two checks; a move of the chosen engine's median that calls one at once. */
const RECHECK_FIRST = 64;
const RECHECK_MAX = 2048;
const DRIFT = 0.25;
/** How much faster the other engine must be to take over. */
const MARGIN = 0.05;
/** Counted steps each for an early verdict, and the ratio of medians that allows it. */
const FEW = 6;
const CLEAR = 1.5;
/** The share of the run's step time that checks which changed nothing may have cost. */
const BUDGET = 0.03;

type Side = 'local' | 'threads';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * `local` computes in this thread; startThreads() starts the engine of
 * `threadCount` worker threads (only if the steps are long enough). Both
 * work on the same weights and optimizer state. `log` gets the choices; the
 * step times are read from `clock` (a fake one in tests).
 */
export function createAutoEngine(
  local: GradientEngine, threadCount: number, startThreads: () => Promise<GradientEngine>, gradLen: number,
  log: (line: string) => void, clock: Pick<Clock, 'now'> = systemClock,
): GradientEngine {
  const sum = allocFloats(gradLen);
  const threadsLabel = `${threadCount} worker thread${threadCount === 1 ? '' : 's'}`;
  const first: number[] = [];
  let threads: GradientEngine | null = null;
  let starting: Promise<void> | null = null;
  /** The threads will not be used: too short a step for them, they failed to start, or closed. */
  let noThreads = false;
  let threadsClosed = false;
  let choice: WorkersChoice | undefined;
  let localSteps = 0;

  // Measuring (steps 2 and 3): the counted step times of each engine, blocks in turns.
  const times: Record<Side, number[]> = { local: [], threads: [] };
  let probeStep = 0;
  let threadsMs = 0;
  let extra = 0;
  let chosen: Side | null = null;

  // Checking (step 4): the chosen engine's counted times since the verdict, the next check, a check's block.
  let recent: number[] = [];
  let reference = 0;
  let sinceCheck = 0;
  let interval = RECHECK_FIRST;
  let check: { side: Side; step: number; theirs: number[]; mine: number[]; before: number; lostMs: number } | null = null;
  /** Every step's time, and what checks that changed nothing took beyond the chosen engine's pace. */
  let runMs = 0;
  let checksLostMs = 0;
  /** Steps on the chosen engine since it last took over (its first SETTLE are not counted). */
  let onChosen = 0;

  const engineOf = (side: Side): GradientEngine => (side === 'threads' ? threads! : local);
  const other = (side: Side): Side => (side === 'threads' ? 'local' : 'threads');
  const where = (side: Side) => (side === 'threads' ? `on the ${threadCount} threads` : "in the coordinator's thread (as --workers 0)");

  function decide(side: Side, figures: string, switching: boolean): void {
    chosen = side;
    choice = { workers: side === 'threads' ? threadCount : 0, reason: `${figures}: ${switching ? 'switching to training' : 'training'} ${where(side)}` };
    log(`workers: ${choice.reason}`);
    recent = [];
    reference = 0;
    sinceCheck = 0;
    onChosen = 0;
  }

  function keepLocalForGood(reason: string): void {
    noThreads = true;
    decide('local', reason, false);
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

  const figuresOf = (t: number, l: number, n: number, at?: number) =>
    `${at === undefined ? '' : `at step ${at}, `}a step took ${t.toFixed(2)} ms on ${threadsLabel} and ${l.toFixed(2)} ms in the coordinator's thread (median of ${n} steps each)`;

  /** The first verdict, on the last PROBE counted steps of each, unless the threads are behind and still warming up. */
  function firstVerdict(): void {
    const n = Math.min(PROBE, times.local.length, times.threads.length);
    const l = median(times.local.slice(-n));
    const t = median(times.threads.slice(-n));
    const clear = Math.max(t / l, l / t) >= CLEAR;
    if (n < PROBE && !clear) return;
    // Against the threads, not on one block of theirs, nor while they still improve (their code compiles, they
    // start their loop again after each block here): a clear case too, which one slow block can make.
    const oneBlock = times.threads.length < 2 * (BLOCK - SETTLE);
    if (t >= l && extra < MAX_EXTRA && (oneBlock || warmingUp())) {
      extra++;
      return;
    }
    decide(t < l ? 'threads' : 'local', figuresOf(t, l, n), false);
  }

  /** A step here while the threads are not there (yet): timed, to decide whether to start them. */
  async function firstSteps(job: BatchJob, stepper: Stepper, next: BatchJob | undefined): Promise<StepOutcome> {
    const n = localSteps++;
    // While the threads start: a turn of the event loop per step, or their start-up messages would wait
    // for the run to end (a step here runs synchronously).
    if (threads === null) await new Promise<void>((resolve) => setImmediate(resolve));
    const t0 = clock.now();
    const outcome = await runStep(local, job, stepper, sum, next);
    runMs += clock.now() - t0;
    if (n >= LEAD_IN && first.length < FIRST) first.push(clock.now() - t0);
    if (first.length === FIRST && !timedHere) {
      timedHere = true;
      const l = median(first);
      if (l < CHEAP_MS) {
        keepLocalForGood(`a step took ${l.toFixed(2)} ms in the coordinator's thread (median of ${FIRST}), too short for ${threadsLabel} to gain ` +
          `(they pay about 0.1 ms a step to hand it over and share the update)`);
        await closeThreads();
      }
    }
    return outcome;
  }
  /** Whether the first steps here have been timed (the threads take part from then on, once started). */
  let timedHere = false;
  // The threads start now (choose.ts has usually started them already, before the first step).
  starting = startThreads().then(
    (t) => { threads = t; },
    (err: Error) => { threadsClosed = true; if (chosen === null) keepLocalForGood(`the worker threads did not start (${err.message.split('\n')[0]})`); },
  );

  /**
   * Steps 2-3: blocks of BLOCK steps, all on the threads until they are warm
   * (the coordinator's thread was timed already), then in turns; the
   * verdict at the end of a block once both have FEW counted steps.
   */
  async function probe(job: BatchJob, stepper: Stepper, next: BatchJob | undefined): Promise<StepOutcome> {
    const n = probeStep++;
    const side = blockSide;
    const last = n % BLOCK === BLOCK - 1;
    const t0 = clock.now();
    // The block's last step: the next one may go to the other engine, which must not find this one's work ahead.
    const outcome = await runStep(engineOf(side), job, stepper, sum, last ? undefined : next);
    const ms = clock.now() - t0;
    runMs += ms;
    if (side === 'threads') threadsMs += ms;
    const warm = threadsMs - (side === 'threads' ? ms : 0) >= WARM_MS;
    if (n % BLOCK >= SETTLE && (side === 'local' || warm)) times[side].push(ms);
    if (last) {
      blockSide = !warm ? 'threads' : other(side);
      const enough = times.local.length >= FEW && times.threads.length >= FEW;
      if (enough && (extra === 0 || side === 'threads')) firstVerdict();
    }
    return outcome;
  }
  /** The engine of the probe's current block. */
  let blockSide: Side = 'threads';

  /**
   * Step 4: the chosen engine, and now and then a check: a block on the
   * other engine, then one on the chosen engine, their medians compared
   * (measured side by side, so a moment's slowdown of the chosen engine
   * before the check, or during it, does not make a switch by itself).
   */
  async function checked(job: BatchJob, stepper: Stepper, next: BatchJob | undefined): Promise<StepOutcome> {
    const current = chosen!;
    if (check === null) {
      // A check is due after `interval` steps, or now if the chosen engine's speed moved: it starts at the next step.
      const drifted = reference > 0 && recent.length >= 2 * PROBE && Math.abs(median(recent.slice(-2 * PROBE)) / reference - 1) >= DRIFT;
      const affordable = checksLostMs <= BUDGET * runMs;
      const due = !noThreads && threads !== null && !threadsClosed && affordable && (sinceCheck + 1 >= interval || drifted);
      const ms = await timed(current, job, stepper, due ? undefined : next);
      sinceCheck++;
      if (onChosen++ >= SETTLE) {
        recent.push(ms);
        if (recent.length > 8 * PROBE) recent = recent.slice(-4 * PROBE);
        if (reference === 0 && recent.length >= 2 * PROBE) reference = median(recent);
      }
      if (due) {
        const per = BLOCK - SETTLE;
        const before = recent.length >= per ? median(recent.slice(-per)) : Infinity;
        check = { side: other(current), step: 0, theirs: [], mine: [], before, lostMs: 0 };
      }
      return lastOutcome!;
    }
    const c = check;
    // Steps 0..BLOCK-1 on the other engine, then BLOCK..2*BLOCK-1 on the chosen one; each block's first SETTLE not counted.
    const onOther = c.step < BLOCK;
    const inBlock = c.step % BLOCK;
    const last = inBlock === BLOCK - 1;
    const ms = await timed(onOther ? c.side : current, job, stepper, last ? undefined : next);
    if (onOther) c.lostMs += ms;
    if (inBlock >= SETTLE) (onOther ? c.theirs : c.mine).push(ms);
    c.step++;
    if (c.step === 2 * BLOCK) {
      check = null;
      const theirs = median(c.theirs);
      // The chosen engine's pace: its block after the other's, or its last steps before the check if faster. Coming
      // back after the other's block costs the threads more than SETTLE steps at times (they wake, start their loop
      // again): that cost is the check's, not their pace. A real change shows in both (a slowdown that calls a check
      // at once is in the steps before it; one that lasts, in the block after).
      const mine = Math.min(c.before, median(c.mine));
      if (theirs < (1 - MARGIN) * mine) {
        const [t, l] = c.side === 'threads' ? [theirs, mine] : [mine, theirs];
        decide(c.side, figuresOf(t, l, c.theirs.length, job.step + 1), true);
        interval = RECHECK_FIRST;
      } else {
        checksLostMs += Math.max(0, c.lostMs - BLOCK * mine);
        sinceCheck = 0;
        onChosen = 0; // the chosen engine's steps count again from here, past their settling
        recent = [];
        reference = 0;
        interval = Math.min(RECHECK_MAX, 2 * interval);
      }
    }
    return lastOutcome!;
  }

  let lastOutcome: StepOutcome | null = null;
  /** Runs the step on `side`, keeps its outcome, and returns its time (counted into the run's). */
  async function timed(side: Side, job: BatchJob, stepper: Stepper, next: BatchJob | undefined): Promise<number> {
    const t0 = clock.now();
    lastOutcome = await runStep(engineOf(side), job, stepper, sum, next);
    const ms = clock.now() - t0;
    runMs += ms;
    return ms;
  }

  return {
    get workers() { return chosen === 'local' ? 0 : threadCount; },
    async batchGradient(job, out) {
      await engineOf(chosen ?? (threads === null ? 'local' : 'threads')).batchGradient(job, out);
    },
    async step(job, stepper, next) {
      if (chosen !== null) return checked(job, stepper, next);
      if (threads === null || !timedHere) return firstSteps(job, stepper, next);
      return probe(job, stepper, next);
    },
    stats(): EngineStats {
      const none = noDispatchStats();
      return chosen === 'local' || threads === null ? none : threads.stats?.() ?? none;
    },
    summaries(): WorkerSummary[] {
      return chosen === 'local' || threads === null ? [] : threads.summaries?.() ?? [];
    },
    stepDone(report) {
      if (chosen !== 'local') threads?.stepDone?.(report);
    },
    choice: () => choice,
    async close(outcome) {
      await closeThreads(outcome);
      await local.close(outcome);
    },
  };
}
