// The dispatcher: one step's micro-shards over whatever workers are there,
// whatever carries the messages. Transports (worker threads, WebSocket
// processes, browser tabs) register a WorkerLink per worker and report back
// what it answered; the dispatcher does the rest:
//
//   - membership: workers join and leave at any moment, also mid-step;
//   - ranges: the step's micro-shards [start, end) are cut into one
//     contiguous range per idle worker, sized by each worker's measured
//     samples/s (ranges.ts: splitRanges);
//   - attempts: every dispatch of a range is an attempt with its own task id;
//     a failed attempt (the worker threw, crashed, left, answered garbage) is
//     dispatched again to an idle worker; an attempt older than the step
//     timeout is dispatched again too, but stays open: whichever answer comes
//     first is taken, any other is late and ignored (the stall inspector);
//   - validation: an answer must name a task that worker holds, the step's
//     weights version, exactly the aligned blocks of the range, the right
//     lengths and sample counts, and (from a process or a tab) finite values;
//     a worker that answers otherwise is dropped and its range reassigned;
//   - stragglers (speculative execution): when a worker is idle and a
//     process's or tab's attempt has run well past the time its measured
//     speed predicts, the range is duplicated to the idle worker; the first
//     valid answer wins, the other is late;
//   - verification (verification.ts): a fraction of the ranges answered by
//     processes and tabs is computed again by another worker and the bits
//     compared; on a mismatch the coordinator's referee recomputes the range
//     and every worker that differs from it is quarantined;
//   - combining: when every range has an answer, the blocks are combined in
//     the fixed tree order (src/reduce/tree.ts).
// The stall inspector (stall-inspector.ts) and the cross-check of untrusted
// answers (cross-check.ts) are modules of their own; the state of a step
// and the pure functions over it are in round.ts, the types transports and
// engines share in contract.ts.
// Who computed what, in which order answers came, and how often a range
// was tried change nothing: the bits come from the tree alone.
//
// It knows nothing of threads or sockets, and reads the time only through a
// Clock, so test/dispatch/dispatcher.test.ts drives it over an in-memory
// transport with a fake clock.
import { dptError } from '../errors.js';
import { faultFor, type Fault } from './chaos.js';
import { systemClock, type Clock } from './clock.js';
import {
  noDispatchStats, type DispatcherOptions, type DispatchStats, type RangeAnswer, type RangeJob, type WorkerLink, type WorkerSummary,
} from './contract.js';
import { CrossCheck } from './cross-check.js';
import { shardLabel } from './ranges.js';
import {
  checkAnswer, combineRound, covers, cutRound, exhaustedError, orderOf, rangeOrder, summaryOf, who, type Attempt, type Member, type Round, type Slot,
} from './round.js';
import { StallInspector } from './stall-inspector.js';

// The types that transports and engines share with the dispatcher.
export type * from './contract.js';
export { noDispatchStats } from './contract.js';

const DEFAULT_MAX_ATTEMPTS = 4;
const DEFAULT_SPECULATE_FACTOR = 3;
const DEFAULT_SPECULATE_SLACK_MS = 100;
/** Dispatches of one range in one step, whatever their fate, before giving up: stops a loop of workers that die on it. */
const MAX_DISPATCHES = 64;
const SPEED_SMOOTHING = 0.3;

export class Dispatcher {
  private readonly members = new Map<string, Member>();
  private readonly departed: WorkerSummary[] = [];
  private readonly attempts = new Map<number, Attempt>();
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private readonly maxAttempts: number;
  private readonly stallWarnMs: number;
  private readonly chaos: readonly Fault[];
  private round: Round | null = null;
  private nextTaskId = 1;
  private closed = false;
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  private readonly scratch: Float32Array[] = [];
  private readonly timing: DispatchStats = noDispatchStats();
  private readonly verifyFraction: number;
  private readonly inspector: StallInspector;
  private readonly crossCheck: CrossCheck;

  constructor(private readonly opts: DispatcherOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
    this.maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.stallWarnMs = opts.stallWarnMs ?? 60_000;
    this.chaos = opts.chaos ?? [];
    this.verifyFraction = opts.verifyFraction ?? 0;
    if (!(this.verifyFraction >= 0 && this.verifyFraction <= 1)) throw new RangeError(`verifyFraction must be in [0, 1], got ${this.verifyFraction}`);
    if (this.verifyFraction > 0 && opts.referee === undefined) throw new Error('verifyFraction > 0 needs a referee (the coordinator\'s own compute)');
    this.inspector = new StallInspector({
      clock: this.clock, stepTimeoutMs: opts.stepTimeoutMs, stallWarnMs: this.stallWarnMs, maxAttempts: this.maxAttempts,
      speculateFactor: opts.speculateFactor ?? DEFAULT_SPECULATE_FACTOR, speculateSlackMs: opts.speculateSlackMs ?? DEFAULT_SPECULATE_SLACK_MS,
      timing: this.timing, log: this.log,
      members: () => this.members.values(),
      attempts: () => this.attempts.values(),
      settle: (r, err) => this.settle(r, err),
      schedule: () => this.schedule(),
      dispatch: (r, slot, m) => this.dispatch(r, slot, m),
      offense: (m, reason, a) => this.offense(m, reason, a),
      exhausted: (r, slot, what) => this.exhausted(r, slot, what),
    });
    this.crossCheck = new CrossCheck({
      gradLen: opts.gradLen, timing: this.timing, log: this.log,
      round: () => this.round,
      where: () => this.where(),
      accept: (round, slot, answer) => this.accept(round, slot, answer),
      advance: (round) => this.advance(round),
      referee: (job) => opts.referee!(job),
    });
  }

  // ---- membership

  join(link: WorkerLink): void {
    if (this.closed) { link.drop('the run is over'); return; }
    const { id } = link.info;
    if (this.members.has(id)) throw new Error(`worker id ${id} joined twice`);
    this.members.set(id, {
      link, info: link.info, open: new Set(), gone: false, speed: NaN, microShards: 0, samples: 0, busyMs: 0, faults: 0,
      verified: 0, quarantined: false,
    });
    this.opts.onMembership?.('join', link.info);
    if (this.members.size > 1) this.crossCheck.workersJoined();
    for (const w of [...this.waiters]) {
      if (this.liveCount() >= w.n) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(); }
    }
    this.schedule();
  }

  /** The worker is gone (closed, crashed, dropped): its open attempts fail and their ranges go elsewhere. */
  leave(id: string, reason: string): void {
    const m = this.members.get(id);
    if (m === undefined) return;
    this.members.delete(id);
    m.gone = true;
    this.departed.push(summaryOf(m));
    this.opts.onMembership?.('leave', m.info, reason);
    for (const taskId of [...m.open]) {
      const a = this.attempts.get(taskId);
      if (a !== undefined) this.failAttempt(a, `left: ${reason}`, false);
    }
    this.schedule();
  }

  /** Workers connected now. */
  liveCount(): number {
    return this.members.size;
  }

  /** Resolves once at least n workers are connected. */
  whenWorkers(n: number): Promise<void> {
    if (this.liveCount() >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  summaries(): WorkerSummary[] {
    return [...this.departed, ...[...this.members.values()].map((m) => summaryOf(m))];
  }

  stats(): DispatchStats {
    return { ...this.timing };
  }

  /** A worker's answer. Late ones are ignored; invalid ones drop the worker. */
  answer(id: string, answer: RangeAnswer): void {
    const m = this.members.get(id);
    const a = this.attempts.get(answer.taskId);
    if (m === undefined) { answer.release?.(); return; } // it left meanwhile
    if (a === undefined || a.member !== m) {
      answer.release?.();
      if (a === undefined && this.isLate(answer.taskId)) {
        this.log(`${this.where()}ignored a late answer from ${who(m)} (task ${answer.taskId})`);
        return;
      }
      this.offense(m, `answered task ${answer.taskId}, which it was not given`);
      return;
    }
    this.closeAttempt(a);
    const slot = a.slot;
    const round = this.round;
    if (round === null || round.settled || slot.answer !== null || !round.slots.includes(slot)) {
      answer.release?.();
      // After a straggler's range was duplicated, one of the two answers is late by design: not worth a line.
      if (!slot.attempts.some((x) => x.duplicated)) {
        this.log(`step ${round?.step ?? '?'}: ignored a late answer from ${who(m)} (micro-shards ${shardLabel(slot)}, task ${a.taskId})`);
      }
      this.schedule();
      return;
    }
    const problem = checkAnswer(round, slot, m, answer, this.opts.gradLen);
    if (problem !== null) {
      answer.release?.();
      m.faults++;
      if (problem === 'non-finite') {
        slot.nonFiniteFrom = m;
        this.offense(m, `answered micro-shards ${shardLabel(slot)} with NaN or Infinity`, a);
      } else {
        this.offense(m, `answered micro-shards ${shardLabel(slot)} of step ${round.step} wrongly: ${problem}`, a);
      }
      return;
    }
    this.credit(m, slot, a, answer);
    if (!slot.checked || (slot.candidate === null && m.info.kind === 'thread')) {
      this.accept(round, slot, answer, m.info.kind === 'thread' ? null : m);
      return;
    }
    if (slot.candidate === null) {
      // An untrusted answer: held until a second computation of the range confirms it.
      slot.candidate = { answer, member: m };
      this.schedule();
      return;
    }
    if (slot.candidate.member === m) {
      // Its own range again (it answered a duplicate of a range it had answered): no evidence either way.
      answer.release?.();
      this.schedule();
      return;
    }
    this.crossCheck.compare(round, slot, slot.candidate, { answer, member: m });
  }

  /** Counts a valid answer to the worker's figures and speed, whether or not it is taken. */
  private credit(m: Member, slot: Slot, a: Attempt, answer: RangeAnswer): void {
    const elapsed = Math.max(this.clock.now() - a.startedAt, 1e-3);
    const samples = slot.samples.reduce((s, x) => s + x, 0);
    m.microShards += slot.end - slot.start;
    m.samples += samples;
    m.busyMs += elapsed;
    const rate = (samples / elapsed) * 1000;
    m.speed = Number.isNaN(m.speed) ? rate : (1 - SPEED_SMOOTHING) * m.speed + SPEED_SMOOTHING * rate;
    this.timing.workerMs += answer.computeMs;
  }

  /** The range's sums are final: combine the step when it was the last one missing. */
  private accept(round: Round, slot: Slot, answer: RangeAnswer, unchecked: Member | null = null): void {
    slot.answer = answer;
    slot.unchecked = unchecked;
    this.advance(round);
  }

  private advance(round: Round): void {
    if (round.settled) return;
    if (round.slots.every((s) => s.answer !== null)) this.finish(round);
    else this.schedule();
  }

  /** The worker says it could not compute the task (it threw), or its transport lost the task (a thread exited). */
  failure(id: string, taskId: number, reason: string): void {
    const m = this.members.get(id);
    const a = this.attempts.get(taskId);
    if (m === undefined || a === undefined || a.member !== m) return;
    const r = this.round;
    if (r === null || r.settled || a.slot.answer !== null || !r.slots.includes(a.slot)) {
      // The step has moved on (a thread answers `stale` when the weights changed under it): a late answer.
      this.closeAttempt(a);
      this.log(`step ${r?.step ?? '?'}: ignored a late answer from ${who(m)} (micro-shards ${shardLabel(a.slot)}, task ${taskId}: ${reason})`);
      this.schedule();
      return;
    }
    m.faults++;
    this.failAttempt(a, `failed: ${reason}`, true);
  }

  /**
   * Computes the aligned-block sums of [job.start, job.end) and writes block
   * b into out(b). Resolves when every block is written.
   */
  computeRange(job: RangeJob, out: (b: number) => Float32Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error('dispatcher: closed'));
    // A new range supersedes one still running (a network worker whose coordinator moved on, or came back after a restart).
    if (this.round !== null && !this.round.settled) this.settle(this.round, new Error(`step ${this.round.step}: superseded by a new range`));
    return new Promise<void>((resolve, reject) => {
      this.round = {
        job, step: job.step + 1, slots: [], out, resolve, reject,
        startedAt: this.clock.now(), settled: false, timer: null, lastWarnAt: this.clock.now(),
      };
      const t0 = performance.now();
      this.schedule();
      this.timing.dispatchMs += performance.now() - t0;
      if (this.round.slots.length === 0 && !this.round.settled) {
        this.log(`step ${this.round.step}: waiting for a worker (none is connected and idle)`);
      }
    });
  }

  /** Stops: the running step (if any) fails, workers are not told anything (the transports close them). */
  close(): void {
    this.closed = true;
    const r = this.round;
    if (r !== null && !r.settled) this.settle(r, dptError('DPT_ERR_WORKER', `step ${r.step}: the run is shutting down`));
  }

  /** Hands open ranges to idle workers: the first cut of a step, reassignments, late joiners. */
  private schedule(): void {
    const r = this.round;
    if (r === null || r.settled || this.closed) return;
    const idle = [...this.members.values()].filter((m) => m.open.size === 0);
    if (r.slots.length === 0) {
      if (idle.length === 0) return;
      cutRound(r, idle, this.verifyFraction, this.opts.verifyKey ?? 0);
      r.slots.forEach((slot, i) => this.dispatch(r, slot, idle[i]));
    } else {
      const pending = r.slots.filter((s) => s.answer === null && !s.attempts.some(covers));
      for (const slot of pending) {
        if (slot.candidate !== null) {
          // A second computation of an untrusted answer (cross-check.ts).
          const placed = this.crossCheck.place(r, slot, slot.candidate, idle, this.members.values(), (m) => this.dispatch(r, slot, m));
          if (placed === 'refereed') return; // accept() scheduled the rest
          continue;
        }
        // Prefer a worker that has not failed this range already.
        const tried = new Set(slot.attempts.map((a) => a.member));
        const pick = idle.find((m) => !tried.has(m)) ?? idle[0];
        if (pick === undefined) break;
        idle.splice(idle.indexOf(pick), 1);
        this.timing.reassigned++;
        this.dispatch(r, slot, pick);
      }
    }
    this.inspector.arm(r);
  }

  private dispatch(r: Round, slot: Slot, m: Member): void {
    if (slot.attempts.length >= MAX_DISPATCHES) {
      this.settle(r, this.exhausted(r, slot, `dispatched ${slot.attempts.length} times`));
      return;
    }
    const taskId = this.nextTaskId++;
    const number = slot.attempts.length;
    const fault = number === 0 ? faultFor(this.chaos, r.step, slot.index) : undefined;
    const a: Attempt = {
      taskId, member: m, slot, number, startedAt: this.clock.now(), open: true, timedOut: false, duplicated: false, faulted: fault !== undefined,
    };
    slot.attempts.push(a);
    this.attempts.set(taskId, a);
    m.open.add(taskId);
    const order = rangeOrder(r.job, slot, taskId, fault === undefined ? undefined : orderOf(fault));
    m.link.send(order);
  }

  private closeAttempt(a: Attempt): void {
    a.open = false;
    a.member.open.delete(a.taskId);
    this.attempts.delete(a.taskId);
  }

  /** An attempt that will not answer: its range goes to another worker (or the step fails). */
  private failAttempt(a: Attempt, reason: string, counts: boolean): void {
    this.closeAttempt(a);
    const r = this.round;
    const slot = a.slot;
    if (r === null || r.settled || slot.answer !== null || !r.slots.includes(slot)) { this.schedule(); return; }
    slot.reasons.push(`${who(a.member)} ${reason}`);
    if (counts) slot.failures++;
    if (slot.failures >= this.maxAttempts) {
      this.settle(r, this.exhausted(r, slot, `failed ${slot.failures} times`));
      return;
    }
    const stillRunning = slot.attempts.some((x) => x.open);
    this.log(`step ${r.step}: ${who(a.member)} (micro-shards ${shardLabel(slot)}) ${reason}; ` +
      (stillRunning ? 'an earlier attempt is still running' : `reassigning (attempt ${slot.attempts.length + 1}${counts ? ` of ${this.maxAttempts}` : ''})`));
    this.schedule();
  }

  /** A worker that answered wrongly or out of turn: it is dropped (the transport disconnects it). */
  private offense(m: Member, reason: string, a?: Attempt): void {
    this.log(`${this.where()}dropping ${who(m)}: ${reason}`);
    m.faults++;
    if (a !== undefined) {
      // Count it against the range only for threads: they are ours, so a wrong answer is a bug, not an attacker.
      this.failAttemptQuiet(a, `${who(m)} ${reason}`, m.info.kind === 'thread');
    }
    m.link.drop(reason);
  }

  private failAttemptQuiet(a: Attempt, reason: string, counts: boolean): void {
    const r = this.round;
    const slot = a.slot;
    if (a.open) this.closeAttempt(a);
    if (r === null || r.settled || slot.answer !== null) return;
    slot.reasons.push(reason);
    if (counts) slot.failures++;
    if (slot.failures >= this.maxAttempts) { this.settle(r, this.exhausted(r, slot, `failed ${slot.failures} times`)); return; }
    this.schedule();
  }

  private finish(r: Round): void {
    const t0 = performance.now();
    try {
      combineRound(r, this.opts.gradLen, this.scratch, this.opts.round);
    } catch (err) {
      this.settle(r, err as Error);
      return;
    }
    this.timing.combineMs += performance.now() - t0;
    this.timing.steps++;
    this.timing.waitMs += this.clock.now() - r.startedAt;
    this.settle(r, null);
  }

  private settle(r: Round, err: Error | null): void {
    if (r.settled) return;
    r.settled = true;
    r.timer?.cancel();
    r.timer = null;
    for (const slot of r.slots) {
      slot.answer?.release?.();
      // Open attempts stay registered until they answer or their worker leaves: their answers are then late.
    }
    if (err === null) r.resolve();
    else r.reject(err);
  }

  private exhausted(r: Round, slot: Slot, what: string): Error {
    return exhaustedError(r, slot, what, this.opts.stepTimeoutMs);
  }

  /** Whether a task id was handed out before and is closed now (an answer for it is late, not forged). */
  private isLate(taskId: number): boolean {
    return taskId > 0 && taskId < this.nextTaskId;
  }

  private where(): string {
    const r = this.round;
    return r !== null && !r.settled ? `step ${r.step}: ` : '';
  }
}
