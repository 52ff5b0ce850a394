// What the dashboard's live feed (`GET /live`, server-sent events) carries:
// one `snapshot` when a page connects (and again whenever the loss series is
// thinned), then an `update` with what changed every half second. Types
// only: the coordinator (run-status.ts, live-feed.ts) and the dashboard page
// (coordinator/dashboard/) import them, nothing else.
import type { DispatchStats, WorkerSummary } from '../../../src/dispatch/contract.js';

/** The run as configured: shown once, never changes. */
export interface RunInfo {
  /** The config file's name, e.g. "mnist-mlp.json". */
  name: string;
  description?: string;
  /** One line per layer, e.g. "dense 128 relu". */
  layers: string[];
  params: number;
  loss: string;
  optimizer: string;
  batchSize: number;
  microShards: number;
  epochs: number;
  seed: number;
  kernels: string;
  /** --verify-fraction. */
  verifyFraction: number;
  /** Whether workers need a token (never the token itself). */
  tokenRequired: boolean;
}

export type RunPhase = 'starting' | 'waiting-for-workers' | 'training' | 'finishing' | 'done' | 'failed';

export interface RunProgress {
  phase: RunPhase;
  /** Steps done, the run's first step (a resumed run), and its last step. */
  step: number;
  firstStep: number;
  lastStep: number;
  stepsPerEpoch: number;
  /** 1-based epoch of the last step. */
  epoch: number;
  /** The last step's training loss. */
  loss: number | null;
  samplesPerSec: number;
  /** Steps per second of wall time over the last steps. */
  stepsPerSec: number;
  /** Seconds since the coordinator started, and the estimated seconds left (null until a step is done). */
  elapsedSec: number;
  etaSec: number | null;
  /** The dispatcher's counters: verification, quarantines, stragglers, reassignments. */
  stats: Pick<DispatchStats, 'verified' | 'disputes' | 'quarantined' | 'speculated' | 'reassigned' | 'refereed'>;
}

/** One test evaluation: a line of metrics.jsonl. */
export interface EvalPoint {
  epoch: number;
  step: number;
  trainLoss: number;
  testLoss: number;
  accuracy: number | null;
  f1Macro: number | null;
}

/** A line of the coordinator's log (joins, leaves, stalls, quarantines), with its time in seconds since the start. */
export interface LiveEvent {
  t: number;
  line: string;
}

/** [step, mean training loss of the steps since the previous point] */
export type LossPoint = [number, number];

export interface LiveSnapshot {
  type: 'snapshot';
  info: RunInfo;
  progress: RunProgress;
  /** Steps per loss point (1 until the series is thinned). */
  lossStride: number;
  losses: LossPoint[];
  evals: EvalPoint[];
  workers: WorkerSummary[];
  events: LiveEvent[];
}

export interface LiveUpdate {
  type: 'update';
  progress: RunProgress;
  /** Points, evaluations and events added since the last message. */
  losses: LossPoint[];
  evals: EvalPoint[];
  events: LiveEvent[];
  workers: WorkerSummary[];
}

export type LiveMessage = LiveSnapshot | LiveUpdate;
