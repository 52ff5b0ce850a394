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
// Who computed what, in which order answers came, and how often a range
// was tried change nothing: the bits come from the tree alone.
//
// It knows nothing of threads or sockets, and reads the time only through a
// Clock, so test/dispatch/dispatcher.test.ts drives it over an in-memory
// transport with a fake clock.
import { dptError } from '../errors.js';
import { alignedBlocks, combineNode, nodeKey, type TreeNode } from '../reduce/tree.js';
import { shardBounds } from '../train/batch.js';
import { rowsOf } from '../train/range.js';
import type { FaultOrder, WorkerKind } from '../protocol/messages.js';
import { faultFor, type Fault } from './chaos.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { alignedSplit, CUT_TOLERANCE, shardLabel } from './ranges.js';
import { firstDifference, isChecked } from './verification.js';

export interface WorkerInfo {
  /** Unique within the run, e.g. `thread-1`, `p3`. */
  readonly id: string;
  readonly kind: WorkerKind;
  /** Host name, address or browser. */
  readonly host: string;
  readonly threads: number;
  readonly name?: string;
}

/** What a worker is asked to compute: the aligned-block sums of micro-shards [start, end). */
export interface RangeOrder extends RangeJob {
  readonly taskId: number;
  readonly fault?: FaultOrder;
}

/** A worker's answer to a RangeOrder, as its transport decoded it. */
export interface RangeAnswer {
  readonly taskId: number;
  readonly version: number;
  readonly blocks: readonly { level: number; index: number }[];
  /** blocks.length gradient vectors, one after the other. */
  readonly sums: Float32Array;
  readonly computeMs: number;
  /** The transport's buffer behind `sums` may be reused once this is called. */
  readonly release?: () => void;
}

/** One worker as a transport presents it. */
export interface WorkerLink {
  readonly info: WorkerInfo;
  /** Starts the order; the answer comes back through Dispatcher.answer or .failure. Must not throw. */
  send(order: RangeOrder): void;
  /** Disconnects the worker (it misbehaved); the transport then calls Dispatcher.leave. */
  drop(reason: string): void;
  /**
   * Disconnects the worker and refuses it for the rest of the run (its answer
   * differed from the referee's). Without it, the worker is only dropped.
   */
  quarantine?(reason: string): void;
}

/** One range of one global batch to compute (the whole batch: [0, k)). */
export interface RangeJob {
  /** 0-based step. */
  readonly step: number;
  /** The weights version the transports publish for this step. */
  readonly version: number;
  readonly k: number;
  readonly rows: number;
  readonly start: number;
  readonly end: number;
  /** Sample indices of the range's rows. */
  readonly indices: Uint32Array;
}

/** Per-worker figures, for logs, the --json summary and dashboards. */
export interface WorkerSummary {
  id: string;
  kind: WorkerKind;
  host: string;
  threads: number;
  name?: string;
  /** Micro-shards it answered (answers that passed validation, checks of other workers' ranges included). */
  microShards: number;
  /** Samples per second of wall time over its accepted tasks (dispatch to answer). */
  samplesPerSec: number;
  /** Failed attempts, timeouts and refused answers. */
  faults: number;
  /** Ranges of its that another worker (or the referee) computed again and found identical. */
  verified: number;
  state: 'idle' | 'busy' | 'gone' | 'quarantined';
}

/** Where the coordinator's own time went (cumulative, ms). */
export interface DispatchStats {
  steps: number;
  dispatchMs: number;
  combineMs: number;
  waitMs: number;
  /** The workers' own compute time of the accepted tasks, summed. */
  workerMs: number;
  /** Ranges dispatched again (failures and timeouts). */
  reassigned: number;
  /** Ranges of stragglers duplicated to an idle worker. */
  speculated: number;
  /** Untrusted answers checked against a second computation, and how many of those differed. */
  verified: number;
  disputes: number;
  /** Ranges the coordinator computed itself (disputes, and checks with no other worker connected). */
  refereed: number;
  /** Workers quarantined for a wrong answer. */
  quarantined: number;
}

/** Stats before any step (and of an engine that dispatches nothing). */
export function noDispatchStats(): DispatchStats {
  return {
    steps: 0, dispatchMs: 0, combineMs: 0, waitMs: 0, workerMs: 0, reassigned: 0,
    speculated: 0, verified: 0, disputes: 0, refereed: 0, quarantined: 0,
  };
}

export interface DispatcherOptions {
  /** Floats in one gradient vector (gradLength(model)). */
  gradLen: number;
  /** Reassign a range whose attempt is older than this (0: never, only warn). */
  stepTimeoutMs: number;
  /** Failures of one range in one step before the step fails (a worker that leaves or is dropped is not the range's fault). */
  maxAttempts?: number;
  /** Without a step timeout, warn about missing workers this often. */
  stallWarnMs?: number;
  chaos?: readonly Fault[];
  /** Fraction of the ranges answered by processes and tabs that a second worker recomputes (0: none, 1: all). */
  verifyFraction?: number;
  /** Secret key of the choice of checked ranges (never sent to workers). */
  verifyKey?: number;
  /**
   * Computes a range in the coordinator itself, with the step's weights: the
   * arbiter of a dispute, and the checker when no other worker is connected.
   * Required when verifyFraction > 0.
   */
  referee?: (job: RangeJob) => Float32Array;
  /**
   * Stragglers: a process's or tab's attempt older than speculateFactor times
   * the time its measured speed predicts, plus speculateSlackMs, is duplicated
   * to an idle worker (factor 0: never; nor without a step timeout, nor for an
   * attempt carrying a --chaos fault). Defaults 3 and 100 ms.
   */
  speculateFactor?: number;
  speculateSlackMs?: number;
  clock?: Clock;
  log?: (line: string) => void;
  /** Joins and leaves, for the caller's own bookkeeping. */
  onMembership?: (event: 'join' | 'leave', info: WorkerInfo, reason?: string) => void;
}

const DEFAULT_MAX_ATTEMPTS = 4;
const DEFAULT_SPECULATE_FACTOR = 3;
const DEFAULT_SPECULATE_SLACK_MS = 100;
/** Dispatches of one range in one step, whatever their fate, before giving up: stops a loop of workers that die on it. */
const MAX_DISPATCHES = 64;
const SPEED_SMOOTHING = 0.3;

interface Member {
  readonly link: WorkerLink;
  readonly info: WorkerInfo;
  /** Open attempts on this worker. */
  readonly open: Set<number>;
  gone: boolean;
  /** Smoothed samples/s, NaN until its first answer. */
  speed: number;
  microShards: number;
  samples: number;
  busyMs: number;
  faults: number;
  verified: number;
  quarantined: boolean;
}

interface Attempt {
  readonly taskId: number;
  readonly member: Member;
  readonly slot: Slot;
  readonly number: number;
  readonly startedAt: number;
  open: boolean;
  timedOut: boolean;
  /** A straggler whose range was duplicated to another worker already. */
  duplicated: boolean;
  /** It carries a --chaos fault: left to the stall inspector, which the fault is there to exercise. */
  readonly faulted: boolean;
}

/** An untrusted worker's answer waiting for a second computation of its range. */
interface Candidate {
  readonly answer: RangeAnswer;
  readonly member: Member;
}

interface Slot {
  /** Position in the step's cut: what --chaos calls worker. */
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly blocks: TreeNode[];
  readonly samples: number[];
  readonly attempts: Attempt[];
  answer: RangeAnswer | null;
  /** Failures that count against maxAttempts, and why every attempt failed. */
  failures: number;
  readonly reasons: string[];
  /** A worker whose answer held NaN or Infinity: a second worker agreeing means the model diverged. */
  nonFiniteFrom: Member | null;
  /** Whether an untrusted answer must be confirmed by a second computation (--verify-fraction). */
  readonly checked: boolean;
  candidate: Candidate | null;
  /** The untrusted worker whose answer was taken without a check, if any (recomputed if it is caught lying this step). */
  unchecked: Member | null;
}

interface Round {
  readonly job: RangeJob;
  /** 1-based, for messages and --chaos. */
  readonly step: number;
  slots: Slot[];
  readonly out: (b: number) => Float32Array;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly startedAt: number;
  settled: boolean;
  timer: Timer | null;
  lastWarnAt: number;
}

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
  /** Said once that the coordinator checks a lone worker itself (until a second worker joins). */
  private soloNoted = false;
  private readonly speculateFactor: number;
  private readonly speculateSlackMs: number;

  constructor(private readonly opts: DispatcherOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? (() => {});
    this.maxAttempts = opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.stallWarnMs = opts.stallWarnMs ?? 60_000;
    this.chaos = opts.chaos ?? [];
    this.verifyFraction = opts.verifyFraction ?? 0;
    if (!(this.verifyFraction >= 0 && this.verifyFraction <= 1)) throw new RangeError(`verifyFraction must be in [0, 1], got ${this.verifyFraction}`);
    if (this.verifyFraction > 0 && opts.referee === undefined) throw new Error('verifyFraction > 0 needs a referee (the coordinator\'s own compute)');
    this.speculateFactor = opts.speculateFactor ?? DEFAULT_SPECULATE_FACTOR;
    this.speculateSlackMs = opts.speculateSlackMs ?? DEFAULT_SPECULATE_SLACK_MS;
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
    if (this.members.size > 1) this.soloNoted = false;
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
    this.departed.push(this.summaryOf(m));
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
    return [...this.departed, ...[...this.members.values()].map((m) => this.summaryOf(m))];
  }

  stats(): DispatchStats {
    return { ...this.timing };
  }

  // ---- answers from the transports

  /** A worker's answer. Late ones are ignored; invalid ones drop the worker. */
  answer(id: string, answer: RangeAnswer): void {
    const m = this.members.get(id);
    const a = this.attempts.get(answer.taskId);
    if (m === undefined) { answer.release?.(); return; } // it left meanwhile
    if (a === undefined || a.member !== m) {
      answer.release?.();
      if (a === undefined && this.isLate(answer.taskId)) {
        this.log(`${this.where()}ignored a late answer from ${this.who(m)} (task ${answer.taskId})`);
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
        this.log(`step ${round?.step ?? '?'}: ignored a late answer from ${this.who(m)} (micro-shards ${shardLabel(slot)}, task ${a.taskId})`);
      }
      this.schedule();
      return;
    }
    const problem = this.checkAnswer(round, slot, m, answer);
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
    this.compare(round, slot, slot.candidate, { answer, member: m });
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

  /**
   * Two computations of one checked range by different workers: equal bits
   * confirm the candidate; different bits go to the referee, whose sums are
   * taken, and every worker that differs from them is quarantined.
   */
  private compare(round: Round, slot: Slot, first: Candidate, second: Candidate): void {
    const g = this.opts.gradLen;
    this.timing.verified++;
    const diff = firstDifference(first.answer.sums, second.answer.sums, g);
    if (diff === null) {
      first.member.verified++;
      second.answer.release?.();
      slot.candidate = null;
      this.accept(round, slot, first.answer);
      return;
    }
    this.timing.disputes++;
    this.log(`step ${round.step}: ${this.who(first.member)} and ${this.who(second.member)} disagree on micro-shards ${shardLabel(slot)} ` +
      `(first at element ${diff.index} of block ${diff.block}); the coordinator recomputes them`);
    this.settleWithReferee(round, slot, [first, second]);
  }

  /** The candidate checked by the coordinator itself: no other worker is connected. */
  private refereeCheck(round: Round, slot: Slot, c: Candidate): void {
    this.timing.verified++;
    this.settleWithReferee(round, slot, [c]);
  }

  /**
   * The referee's sums become the range's; every answer that differs from
   * them gets its worker quarantined. The range is settled before anyone is
   * quarantined: a quarantine makes workers leave, which reschedules.
   */
  private settleWithReferee(round: Round, slot: Slot, answers: Candidate[]): void {
    const truth = this.refereeSums(round, slot);
    const liars: [Member, string][] = [];
    for (const c of answers) {
      const d = firstDifference(c.answer.sums, truth, this.opts.gradLen);
      if (d === null) c.member.verified++;
      else liars.push([c.member, `its sums for micro-shards ${shardLabel(slot)} of step ${round.step} differ from the coordinator's recomputation (element ${d.index} of block ${d.block})`]);
      c.answer.release?.();
    }
    if (liars.length > 0 && answers.length === 1) this.timing.disputes++;
    slot.candidate = null;
    slot.unchecked = null;
    slot.answer = { taskId: 0, version: round.job.version, blocks: slot.blocks.map((b) => ({ level: b.level, index: b.index })), sums: truth, computeMs: 0 };
    for (const [m, reason] of liars) this.quarantine(m, reason);
    this.advance(round);
  }

  /** The range computed by the coordinator's referee. */
  private refereeSums(round: Round, slot: Slot): Float32Array {
    this.timing.refereed++;
    const [rowStart, rowEnd] = rowsOf({ rows: round.job.rows, k: round.job.k, start: slot.start, end: slot.end });
    const [jobRowStart] = rowsOf(round.job);
    return this.opts.referee!({
      ...round.job, start: slot.start, end: slot.end, indices: round.job.indices.subarray(rowStart - jobRowStart, rowEnd - jobRowStart),
    });
  }

  /**
   * A worker that computed wrong bits: disconnected and refused for the rest
   * of the run (the transport decides what identity to refuse). Candidates it
   * left in this step are discarded: nothing of its is taken unchecked.
   */
  private quarantine(m: Member, reason: string): void {
    if (m.quarantined) return;
    m.quarantined = true;
    m.faults++;
    this.timing.quarantined++;
    this.log(`${this.where()}quarantining ${this.who(m)}: ${reason}; it is disconnected and refused for the rest of the run`);
    const r = this.round;
    if (r !== null && !r.settled) {
      for (const slot of r.slots) {
        if (slot.candidate?.member === m) { slot.candidate.answer.release?.(); slot.candidate = null; }
        // Its answers this step that no one checked are recomputed too (earlier steps are applied already).
        if (slot.unchecked === m) { slot.answer?.release?.(); slot.answer = null; slot.unchecked = null; }
      }
    }
    if (m.gone) return;
    if (m.link.quarantine !== undefined) m.link.quarantine(reason);
    else m.link.drop(reason);
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
      this.log(`step ${r?.step ?? '?'}: ignored a late answer from ${this.who(m)} (micro-shards ${shardLabel(a.slot)}, task ${taskId}: ${reason})`);
      this.schedule();
      return;
    }
    m.faults++;
    this.failAttempt(a, `failed: ${reason}`, true);
  }

  // ---- steps

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

  // ---- internals

  /** Hands open ranges to idle workers: the first cut of a step, reassignments, late joiners. */
  private schedule(): void {
    const r = this.round;
    if (r === null || r.settled || this.closed) return;
    const idle = [...this.members.values()].filter((m) => m.open.size === 0);
    if (r.slots.length === 0) {
      if (idle.length === 0) return;
      this.cut(r, idle);
      r.slots.forEach((slot, i) => this.dispatch(r, slot, idle[i]));
    } else {
      const pending = r.slots.filter((s) => s.answer === null && !s.attempts.some(covers));
      for (const slot of pending) {
        const c = slot.candidate;
        if (c !== null) {
          // A check: by another worker, a thread first (trusted: two liars who agree cannot pass it).
          const pick = idle.find((m) => m !== c.member && m.info.kind === 'thread') ?? idle.find((m) => m !== c.member);
          if (pick === undefined) {
            if ([...this.members.values()].some((m) => m !== c.member)) continue; // another worker will be idle soon
            if (!this.soloNoted) {
              this.soloNoted = true;
              this.log(`step ${r.step}: no other worker is connected to check ${this.who(c.member)}; the coordinator checks its ranges itself until another worker joins`);
            }
            this.refereeCheck(r, slot, c);
            return; // accept() scheduled the rest
          }
          idle.splice(idle.indexOf(pick), 1);
          this.dispatch(r, slot, pick);
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
    this.arm(r);
  }

  /** Cuts the round's micro-shards into one range per idle worker, sized by measured speed. */
  private cut(r: Round, idle: Member[]): void {
    const { start, end, k, rows } = r.job;
    const known = idle.filter((m) => !Number.isNaN(m.speed));
    const perThread = known.length === 0 ? 1 : known.reduce((s, m) => s + m.speed / m.info.threads, 0) / known.length;
    // The threads of this process are alike: they share equally, at their mean speed (measurement noise would only unbalance them).
    const threads = known.filter((m) => m.info.kind === 'thread');
    const threadSpeed = threads.length === 0 ? perThread : threads.reduce((s, m) => s + m.speed, 0) / threads.length;
    const weights = idle.map((m) => (m.info.kind === 'thread' ? threadSpeed : Number.isNaN(m.speed) ? perThread * m.info.threads : m.speed));
    const ranges = alignedSplit(start, end, weights, CUT_TOLERANCE);
    // splitRanges skips workers whose share rounds to nothing: keep the order, drop them.
    const used = ranges.map((rg) => idle[rg.slot]);
    idle.splice(0, idle.length, ...used);
    r.slots = ranges.map((rg, i) => {
      const s = rg.start;
      const e = rg.end;
      const blocks = alignedBlocks(k, s, e);
      const samples = blocks.map((b) => shardBounds(rows, k, b.end - 1)[1] - shardBounds(rows, k, b.start)[0]);
      return {
        index: i, start: s, end: e, blocks, samples, attempts: [], answer: null, failures: 0, reasons: [], nonFiniteFrom: null,
        checked: isChecked(this.verifyFraction, this.opts.verifyKey ?? 0, r.job.step, s, e), candidate: null, unchecked: null,
      };
    });
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
    const [rowStart, rowEnd] = rowsOf({ rows: r.job.rows, k: r.job.k, start: slot.start, end: slot.end });
    const [jobRowStart] = rowsOf(r.job);
    const order: RangeOrder = {
      taskId, step: r.job.step, version: r.job.version, k: r.job.k, rows: r.job.rows, start: slot.start, end: slot.end,
      indices: r.job.indices.subarray(rowStart - jobRowStart, rowEnd - jobRowStart),
      ...(fault === undefined ? {} : { fault: orderOf(fault) }),
    };
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
    slot.reasons.push(`${this.who(a.member)} ${reason}`);
    if (counts) slot.failures++;
    if (slot.failures >= this.maxAttempts) {
      this.settle(r, this.exhausted(r, slot, `failed ${slot.failures} times`));
      return;
    }
    const stillRunning = slot.attempts.some((x) => x.open);
    this.log(`step ${r.step}: ${this.who(a.member)} (micro-shards ${shardLabel(slot)}) ${reason}; ` +
      (stillRunning ? 'an earlier attempt is still running' : `reassigning (attempt ${slot.attempts.length + 1}${counts ? ` of ${this.maxAttempts}` : ''})`));
    this.schedule();
  }

  /** A worker that answered wrongly or out of turn: it is dropped (the transport disconnects it). */
  private offense(m: Member, reason: string, a?: Attempt): void {
    this.log(`${this.where()}dropping ${this.who(m)}: ${reason}`);
    m.faults++;
    if (a !== undefined) {
      // Count it against the range only for threads: they are ours, so a wrong answer is a bug, not an attacker.
      this.failAttemptQuiet(a, `${this.who(m)} ${reason}`, m.info.kind === 'thread');
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

  /** Why an answer cannot be used, 'non-finite', or null. */
  private checkAnswer(r: Round, slot: Slot, m: Member, ans: RangeAnswer): string | null {
    if (ans.version !== r.job.version) return `computed with weights version ${ans.version}, the step's is ${r.job.version}`;
    const want = slot.blocks;
    if (ans.blocks.length !== want.length || ans.blocks.some((b, i) => b.level !== want[i].level || b.index !== want[i].index)) {
      return `blocks ${ans.blocks.map((b) => nodeKey(b.level, b.index)).join(' ')}, expected ${want.map((b) => nodeKey(b.level, b.index)).join(' ')}`;
    }
    const g = this.opts.gradLen;
    if (ans.sums.length !== want.length * g) return `${ans.sums.length} floats, ${want.length} blocks of ${g} need ${want.length * g}`;
    for (let b = 0; b < want.length; b++) {
      const count = ans.sums[b * g + g - 1];
      if (count !== slot.samples[b]) return `block ${b} counts ${count} samples, its micro-shards hold ${slot.samples[b]}`;
    }
    if (m.info.kind !== 'thread' && !allFinite(ans.sums)) {
      // Two different workers agreeing on NaN: the model diverged; let the trainer say so.
      if (slot.nonFiniteFrom !== null && slot.nonFiniteFrom !== m) return null;
      return 'non-finite';
    }
    return null;
  }

  private finish(r: Round): void {
    const t0 = performance.now();
    const g = this.opts.gradLen;
    const sums = new Map<string, Float32Array>();
    for (const slot of r.slots) {
      const ans = slot.answer!;
      slot.blocks.forEach((node, b) => sums.set(nodeKey(node.level, node.index), ans.sums.subarray(b * g, (b + 1) * g)));
    }
    try {
      alignedBlocks(r.job.k, r.job.start, r.job.end).forEach((node, b) => combineNode(r.job.k, node.level, node.index, sums, r.out(b), this.scratch));
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

  /**
   * The stall inspector: a timer for the oldest open attempt's deadline.
   * Without a step timeout it only warns, every stallWarnMs, naming the
   * missing workers (Horovod's stall inspector does the same).
   */
  private arm(r: Round): void {
    r.timer?.cancel();
    r.timer = null;
    if (r.settled) return;
    const open = r.slots.flatMap((s) => (s.answer === null ? s.attempts.filter((a) => a.open && !a.timedOut) : []));
    const timeout = this.opts.stepTimeoutMs;
    const due: number[] = this.stragglers(r).map((x) => x.at);
    if (timeout > 0) {
      // Also the moment a worker's oldest unanswered task (of any step) is twice the timeout old: see reap().
      const silent = [...this.attempts.values()].filter((a) => a.member.info.kind !== 'thread').map((a) => a.startedAt + 2 * timeout);
      due.push(...open.map((a) => a.startedAt + timeout), ...silent);
    } else if (r.slots.length > 0 && open.length > 0) {
      due.push(r.lastWarnAt + this.stallWarnMs);
    }
    if (due.length === 0) return;
    r.timer = this.clock.setTimer(() => this.inspect(r), Math.min(...due) - this.clock.now());
  }

  private inspect(r: Round): void {
    r.timer = null;
    if (r.settled) return;
    const now = this.clock.now();
    const timeout = this.opts.stepTimeoutMs;
    const missing = r.slots.filter((s) => s.answer === null);
    if (timeout <= 0) {
      if (now >= r.lastWarnAt + this.stallWarnMs) {
        r.lastWarnAt = now;
        this.log(`step ${r.step}: stalled: ${missing.length} of ${r.slots.length} ranges missing after ${Math.round(now - r.startedAt)} ms: ` +
          `${this.describe(missing)}; still waiting (no step timeout, so not reassigning)`);
      }
      this.speculate(r, now);
      this.arm(r);
      return;
    }
    this.reap(now, timeout);
    if (r.settled) return;
    const overdue = missing.flatMap((s) => s.attempts.filter((a) => a.open && !a.timedOut && now - a.startedAt >= timeout));
    if (overdue.length > 0) {
      const slots = [...new Set(overdue.map((a) => a.slot))];
      this.log(`step ${r.step}: stalled: ${slots.length} of ${r.slots.length} ranges missing after ${timeout} ms: ${this.describe(slots)}; ` +
        'reassigning their micro-shards (a late answer will be ignored)');
      for (const a of overdue) {
        a.timedOut = true;
        a.member.faults++;
        a.slot.reasons.push(`${this.who(a.member)}: no answer within ${timeout} ms`);
        a.slot.failures++;
        if (a.slot.failures >= this.maxAttempts) {
          this.settle(r, this.exhausted(r, a.slot, `failed ${a.slot.failures} times`));
          return;
        }
      }
    }
    this.speculate(r, now);
    this.schedule();
  }

  /**
   * Attempts of processes and tabs that could be duplicated, with the moment
   * they become stragglers: speculateFactor times the time the worker's
   * measured speed predicts for the range, plus speculateSlackMs. Only while
   * some other worker is idle to take the duplicate, and only with a step
   * timeout (without one, nothing is ever moved: every range waits for its
   * worker).
   */
  private stragglers(r: Round): { attempt: Attempt; at: number; expectedMs: number }[] {
    if (this.speculateFactor <= 0 || this.opts.stepTimeoutMs <= 0) return [];
    const idle = [...this.members.values()].filter((m) => m.open.size === 0);
    if (idle.length === 0) return [];
    const out: { attempt: Attempt; at: number; expectedMs: number }[] = [];
    for (const slot of r.slots) {
      if (slot.answer !== null) continue;
      for (const a of slot.attempts) {
        const m = a.member;
        if (!covers(a) || a.faulted || m.info.kind === 'thread' || !(m.speed > 0)) continue;
        if (!idle.some((x) => x !== m && x !== slot.candidate?.member)) continue;
        const expectedMs = (slot.samples.reduce((t, x) => t + x, 0) / m.speed) * 1000;
        out.push({ attempt: a, at: a.startedAt + this.speculateFactor * expectedMs + this.speculateSlackMs, expectedMs });
      }
    }
    return out;
  }

  /** Duplicates the ranges of stragglers to idle workers (speculative execution): the first valid answer wins. */
  private speculate(r: Round, now: number): void {
    for (const { attempt: a, expectedMs } of this.stragglers(r).filter((x) => x.at <= now).sort((x, y) => x.at - y.at)) {
      const slot = a.slot;
      const idle = [...this.members.values()].filter((m) => m.open.size === 0 && m !== a.member && m !== slot.candidate?.member);
      const tried = new Set(slot.attempts.map((x) => x.member));
      const pick = idle.find((m) => !tried.has(m)) ?? idle[0];
      if (pick === undefined) return;
      a.duplicated = true;
      this.timing.speculated++;
      this.log(`step ${r.step}: ${this.who(a.member)} is a straggler: micro-shards ${shardLabel(slot)} open for ${Math.round(now - a.startedAt)} ms, ` +
        `expected ${Math.round(expectedMs)} ms at its ${Math.round(a.member.speed)} samples/s; duplicating them to ${this.who(pick)} (the first answer wins)`);
      this.dispatch(r, slot, pick);
      if (r.settled) return;
    }
  }

  /**
   * Drops a process or tab that has left a task unanswered for twice the
   * step timeout: its range went elsewhere long ago, and a worker that is
   * connected but never answers would otherwise sit busy forever.
   */
  private reap(now: number, timeout: number): void {
    for (const a of [...this.attempts.values()]) {
      if (!a.open || a.member.gone || a.member.info.kind === 'thread' || now - a.startedAt < 2 * timeout) continue;
      this.offense(a.member, `never answered task ${a.taskId} (micro-shards ${shardLabel(a.slot)}) in ${Math.round(now - a.startedAt)} ms, twice the step timeout`, a);
    }
  }

  private describe(slots: readonly Slot[]): string {
    return slots.map((s) => {
      const a = s.attempts.filter((x) => x.open).at(-1) ?? s.attempts.at(-1);
      return `${a === undefined ? 'nobody' : this.who(a.member)} (micro-shards ${shardLabel(s)}, attempt ${(a?.number ?? 0) + 1})`;
    }).join(', ');
  }

  private exhausted(r: Round, slot: Slot, what: string): Error {
    const hint = this.opts.stepTimeoutMs > 0 ? ` (if the steps are just slow, raise --step-timeout-ms, now ${this.opts.stepTimeoutMs})` : '';
    return dptError('DPT_ERR_WORKER', `step ${r.step}: micro-shards ${shardLabel(slot)} ${what} (${slot.reasons.join('; ')}); giving up${hint}`);
  }

  /** Whether a task id was handed out before and is closed now (an answer for it is late, not forged). */
  private isLate(taskId: number): boolean {
    return taskId > 0 && taskId < this.nextTaskId;
  }

  private who(m: Member): string {
    return `worker ${m.info.id}` + (m.info.kind === 'thread' ? '' : ` (${m.info.kind} on ${m.info.host})`);
  }

  private where(): string {
    const r = this.round;
    return r !== null && !r.settled ? `step ${r.step}: ` : '';
  }

  private summaryOf(m: Member): WorkerSummary {
    return {
      id: m.info.id, kind: m.info.kind, host: m.info.host, threads: m.info.threads,
      ...(m.info.name === undefined ? {} : { name: m.info.name }),
      microShards: m.microShards,
      samplesPerSec: m.busyMs > 0 ? (m.samples / m.busyMs) * 1000 : 0,
      faults: m.faults,
      verified: m.verified,
      state: m.quarantined ? 'quarantined' : m.gone ? 'gone' : m.open.size > 0 ? 'busy' : 'idle',
    };
  }
}

/** An attempt someone is still expected to answer in time (not timed out, not a straggler already duplicated). */
function covers(a: Attempt): boolean {
  return a.open && !a.timedOut && !a.duplicated;
}

function orderOf(f: Fault): FaultOrder {
  return { kind: f.kind, ...(f.ms === undefined ? {} : { ms: f.ms }), ...(f.index === undefined ? {} : { index: f.index }) };
}

function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and ±Infinity.
    if (a[i] - a[i] !== 0) return false;
  }
  return true;
}
