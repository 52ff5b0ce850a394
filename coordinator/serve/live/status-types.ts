// What the dashboard's live feed (`GET /live`, server-sent events) carries:
// one `snapshot` when a page connects (and again whenever the loss series is
// thinned), then an `update` with what changed every half second. Types
// only: the coordinator (run-status.ts, live-feed.ts) and the dashboard page
// (coordinator/serve/dashboard/) import them, nothing else. The run status
// holds the workers as the dispatcher sums them up (WorkerSummary, with
// host names); what leaves on the feed is the viewers' view of them
// (ViewerWorker, viewer-view.ts), with no address and no host name.
import type { DispatchStats, WorkerSummary } from '../../../src/dispatch/contract.js';
import type { WorkerKind } from '../../../src/protocol/messages.js';

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

/** A worker as viewers see it: a pseudonym, what it runs in, its figures; never an address or a host name. */
export interface ViewerWorker {
  /** Its id for the run (`thread-1`, `p3`, `b7`): the one its own page and the coordinator's log show. */
  id: string;
  /** The --name a process gave. */
  name?: string;
  kind: WorkerKind;
  /** `coordinator` (a thread), `Node.js` (a process), a tab's browser family (`Chrome`, `Firefox`, ...). */
  runsIn: string;
  threads: number;
  microShards: number;
  samplesPerSec: number;
  faults: number;
  verified: number;
  state: WorkerSummary['state'];
}

/** [step, mean training loss of the steps since the previous point] */
export type LossPoint = [number, number];

/** `W`: the workers as the run status holds them (WorkerSummary) or as the feed sends them (ViewerWorker, the default). */
export interface LiveSnapshot<W = ViewerWorker> {
  type: 'snapshot';
  info: RunInfo;
  progress: RunProgress;
  /** Steps per loss point (1 until the series is thinned). */
  lossStride: number;
  losses: LossPoint[];
  evals: EvalPoint[];
  workers: W[];
  events: LiveEvent[];
}

export interface LiveUpdate<W = ViewerWorker> {
  type: 'update';
  progress: RunProgress;
  /** Points, evaluations and events added since the last message. */
  losses: LossPoint[];
  evals: EvalPoint[];
  events: LiveEvent[];
  workers: W[];
}

export type LiveMessage<W = ViewerWorker> = LiveSnapshot<W> | LiveUpdate<W>;
