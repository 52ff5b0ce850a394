// What the dispatcher (dispatcher.ts) and the rest of the run agree on: the
// workers as transports present them (WorkerLink), the orders and answers
// that cross a transport, and the figures the dispatcher keeps. Transports,
// engines, the dashboard and the network worker's own local dispatcher
// import these types; none of them needs the dispatcher's insides.
import type { FaultOrder, WorkerKind } from '../protocol/messages.js';
import type { NodeRounding } from '../reduce/tree.js';
import type { Fault } from './chaos.js';
import type { Clock } from './clock.js';

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
  /** --grad-wire bf16: rounds every tree node the combine forms (the workers round theirs). */
  round?: NodeRounding;
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
