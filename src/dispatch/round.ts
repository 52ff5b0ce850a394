// The dispatcher's state of one step (a Round: its ranges, each a Slot with
// its attempts) and of each worker (a Member), with the pure functions over
// them: how a step is cut into ranges, whether an answer fits its range, how
// a worker is named and summed up. dispatcher.ts moves them; the stall
// inspector and the cross-check read them.
import { dptError } from '../errors.js';
import { alignedBlocks, combineNode, nodeKey, type NodeRounding, type TreeNode } from '../reduce/tree.js';
import { shardBounds } from '../train/batch.js';
import { rowsOf } from '../train/range.js';
import type { FaultOrder } from '../protocol/messages.js';
import type { Fault } from './chaos.js';
import type { Timer } from './clock.js';
import type { RangeAnswer, RangeJob, RangeOrder, WorkerInfo, WorkerLink, WorkerSummary } from './contract.js';
import { alignedSplit, CUT_TOLERANCE, shardLabel } from './ranges.js';
import { isChecked } from './verification.js';

export interface Member {
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

export interface Attempt {
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
export interface Candidate {
  readonly answer: RangeAnswer;
  readonly member: Member;
}

export interface Slot {
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

export interface Round {
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

/**
 * Cuts the round's micro-shards into one range per idle worker, sized by
 * measured speed; `idle` keeps the workers that got one, in range order.
 */
export function cutRound(r: Round, idle: Member[], verifyFraction: number, verifyKey: number): void {
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
      checked: isChecked(verifyFraction, verifyKey, r.job.step, s, e), candidate: null, unchecked: null,
    };
  });
}

/** Why an answer cannot be used, 'non-finite', or null. */
export function checkAnswer(r: Round, slot: Slot, m: Member, ans: RangeAnswer, gradLen: number): string | null {
  if (ans.version !== r.job.version) return `computed with weights version ${ans.version}, the step's is ${r.job.version}`;
  const want = slot.blocks;
  if (ans.blocks.length !== want.length || ans.blocks.some((b, i) => b.level !== want[i].level || b.index !== want[i].index)) {
    return `blocks ${ans.blocks.map((b) => nodeKey(b.level, b.index)).join(' ')}, expected ${want.map((b) => nodeKey(b.level, b.index)).join(' ')}`;
  }
  const g = gradLen;
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

/** A worker's --name for a log line: ` "laptop"` (quoted and escaped: it is the worker's to choose), or ''. */
export function quotedName(name: string | undefined): string {
  return name === undefined || name === '' ? '' : ` ${JSON.stringify(name)}`;
}

/** How logs name a worker: `worker t0`, `worker p3 "laptop" (process on HOST)`. */
export function who(m: Member): string {
  return `worker ${m.info.id}${quotedName(m.info.name)}` + (m.info.kind === 'thread' ? '' : ` (${m.info.kind} on ${m.info.host})`);
}

/** The ranges and who holds them, for stall lines. */
export function describe(slots: readonly Slot[]): string {
  return slots.map((s) => {
    const a = s.attempts.filter((x) => x.open).at(-1) ?? s.attempts.at(-1);
    return `${a === undefined ? 'nobody' : who(a.member)} (micro-shards ${shardLabel(s)}, attempt ${(a?.number ?? 0) + 1})`;
  }).join(', ');
}

/** A worker's figures as the summaries and the dashboard show them. */
export function summaryOf(m: Member): WorkerSummary {
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
/** An attempt someone is still expected to answer in time (not timed out, not a straggler already duplicated). */
export function covers(a: Attempt): boolean {
  return a.open && !a.timedOut && !a.duplicated;
}

export function orderOf(f: Fault): FaultOrder {
  return { kind: f.kind, ...(f.ms === undefined ? {} : { ms: f.ms }), ...(f.index === undefined ? {} : { index: f.index }) };
}

export function allFinite(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    // x - x is 0 for finite x and NaN for NaN and ±Infinity.
    if (a[i] - a[i] !== 0) return false;
  }
  return true;
}

/** The order that asks a worker for one range of the round's job (its rows' sample indices only). */
export function rangeOrder(job: RangeJob, slot: Slot, taskId: number, fault: FaultOrder | undefined): RangeOrder {
  const [rowStart, rowEnd] = rowsOf({ rows: job.rows, k: job.k, start: slot.start, end: slot.end });
  const [jobRowStart] = rowsOf(job);
  return {
    taskId, step: job.step, version: job.version, k: job.k, rows: job.rows, start: slot.start, end: slot.end,
    indices: job.indices.subarray(rowStart - jobRowStart, rowEnd - jobRowStart),
    ...(fault === undefined ? {} : { fault }),
  };
}

/** Combines every range's answer into the round's aligned blocks, in the fixed tree order (throws if a micro-shard is uncovered). */
export function combineRound(r: Round, gradLen: number, scratch: Float32Array[], round?: NodeRounding): void {
  const g = gradLen;
  const sums = new Map<string, Float32Array>();
  for (const slot of r.slots) {
    const ans = slot.answer!;
    slot.blocks.forEach((node, b) => sums.set(nodeKey(node.level, node.index), ans.sums.subarray(b * g, (b + 1) * g)));
  }
  alignedBlocks(r.job.k, r.job.start, r.job.end).forEach((node, b) => combineNode(r.job.k, node.level, node.index, sums, r.out(b), scratch, round));
}

/** The step fails: a range failed or was dispatched too often. */
export function exhaustedError(r: Round, slot: Slot, what: string, stepTimeoutMs: number): Error {
  const hint = stepTimeoutMs > 0 ? ` (if the steps are just slow, raise --step-timeout-ms, now ${stepTimeoutMs})` : '';
  return dptError('DPT_ERR_WORKER', `step ${r.step}: micro-shards ${shardLabel(slot)} ${what} (${slot.reasons.join('; ')}); giving up${hint}`);
}
