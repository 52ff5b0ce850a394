// The run as the dashboard shows it: progress, the loss series, the
// evaluations, the workers and the log, kept up to date by the training
// loop's ProgressSink (teeProgress: the loop itself knows nothing of it) and
// the dispatcher (setWorkerSource). The live feed (live-feed.ts) reads it:
// a snapshot for a page that connects, then what changed, by cursor.
//
// Memory stays bounded whatever the run's length: at most MAX_LOSS_POINTS
// loss points (when full, neighbours are merged into their mean and the
// stride doubles; pages then get a new snapshot), MAX_EVENTS log lines.
import type { DispatchStats, WorkerSummary } from '../../../src/dispatch/contract.js';
import type { ProgressSink } from '../../run/trainer.js';
import type { EvalPoint, LiveEvent, LiveSnapshot, LiveUpdate, LossPoint, RunInfo, RunPhase, RunProgress } from './status-types.js';

export const MAX_LOSS_POINTS = 2000;
export const MAX_EVENTS = 200;
/** Steps over which steps/s is measured. */
const RATE_WINDOW = 20;

/** Where a reader has got to: what it has been sent already. */
export interface StatusCursor {
  lossEpoch: number;
  losses: number;
  evals: number;
  events: number;
}

export interface WorkerSource {
  summaries(): WorkerSummary[];
  stats(): DispatchStats;
}

const NO_STATS: RunProgress['stats'] = { verified: 0, disputes: 0, quarantined: 0, speculated: 0, reassigned: 0, refereed: 0 };

export class RunStatus {
  private phase: RunPhase = 'starting';
  private readonly startedAt: number;
  private firstStep = 0;
  private lastStep = 0;
  private stepsPerEpoch = 1;
  private step = 0;
  private epoch = 1;
  private loss: number | null = null;
  private samplesPerSec = 0;
  /** Wall time the training loop started, and the ends of the recent steps. */
  private trainingSince: number | null = null;
  private readonly stepTimes: number[] = [];
  private lossStride = 1;
  /** Bumped whenever the loss series is thinned: readers start over. */
  private lossEpoch = 0;
  private readonly losses: LossPoint[] = [];
  private pending = { sum: 0, count: 0 };
  private readonly evals: EvalPoint[] = [];
  /** Events ever logged (the array keeps the last MAX_EVENTS). */
  private eventCount = 0;
  private readonly events: LiveEvent[] = [];
  private workers: WorkerSource | null = null;

  constructor(readonly info: RunInfo, private readonly now: () => number = () => performance.now()) {
    this.startedAt = now();
  }

  setWorkerSource(source: WorkerSource): void {
    this.workers = source;
  }

  /** Parameters of the model (known once it is built). */
  setParams(n: number): void {
    this.info.params = n;
  }

  setPhase(phase: RunPhase): void {
    this.phase = phase;
  }

  /** The training loop starts: `total` is its last step, `first` the step it starts from. */
  start(total: number, first: number, stepsPerEpoch: number): void {
    this.lastStep = total;
    this.firstStep = first;
    this.step = first;
    this.stepsPerEpoch = Math.max(1, stepsPerEpoch);
    this.epoch = Math.floor(first / this.stepsPerEpoch) + 1;
    this.trainingSince = this.now();
    this.stepTimes.splice(0, this.stepTimes.length, this.trainingSince);
  }

  stepDone(info: { epoch: number; step: number; loss: number; samplesPerSec: number }): void {
    const t = this.now();
    this.step = info.step;
    this.epoch = info.epoch + 1;
    this.loss = info.loss;
    this.samplesPerSec = info.samplesPerSec;
    this.stepTimes.push(t);
    if (this.stepTimes.length > RATE_WINDOW + 1) this.stepTimes.shift();
    this.pending.sum += info.loss;
    this.pending.count++;
    if (this.pending.count >= this.lossStride) {
      this.losses.push([info.step, this.pending.sum / this.pending.count]);
      this.pending = { sum: 0, count: 0 };
      if (this.losses.length > MAX_LOSS_POINTS) this.thin();
    }
  }

  evaluated(e: EvalPoint): void {
    this.evals.push(e);
  }

  note(line: string): void {
    this.events.push({ t: (this.now() - this.startedAt) / 1000, line });
    this.eventCount++;
    if (this.events.length > MAX_EVENTS) this.events.shift();
  }

  /** Everything, for a page that connects (or must start over); and the cursor after it. */
  snapshot(): { message: LiveSnapshot<WorkerSummary>; cursor: StatusCursor } {
    return {
      message: {
        type: 'snapshot', info: this.info, progress: this.progress(), lossStride: this.lossStride,
        losses: [...this.losses], evals: [...this.evals], workers: this.workerList(), events: [...this.events],
      },
      cursor: this.cursor(),
    };
  }

  /** What changed since `cursor` (null: the loss series was thinned, send a snapshot instead); and the new cursor. */
  since(cursor: StatusCursor): { message: LiveUpdate<WorkerSummary>; cursor: StatusCursor } | null {
    if (cursor.lossEpoch !== this.lossEpoch) return null;
    const newEvents = Math.min(this.eventCount - cursor.events, this.events.length);
    return {
      message: {
        type: 'update', progress: this.progress(), losses: this.losses.slice(cursor.losses), evals: this.evals.slice(cursor.evals),
        events: newEvents > 0 ? this.events.slice(this.events.length - newEvents) : [], workers: this.workerList(),
      },
      cursor: this.cursor(),
    };
  }

  progress(): RunProgress {
    const t = this.now();
    const done = this.step - this.firstStep;
    const etaSec = done > 0 && this.trainingSince !== null && this.phase === 'training'
      ? ((this.lastStep - this.step) * (t - this.trainingSince)) / done / 1000
      : this.step >= this.lastStep && this.lastStep > 0 ? 0 : null;
    const times = this.stepTimes;
    const stepsPerSec = times.length >= 2 ? ((times.length - 1) * 1000) / Math.max(1e-3, times[times.length - 1] - times[0]) : 0;
    const s = this.workers?.stats();
    return {
      phase: this.phase, step: this.step, firstStep: this.firstStep, lastStep: this.lastStep, stepsPerEpoch: this.stepsPerEpoch,
      epoch: this.epoch, loss: this.loss, samplesPerSec: this.samplesPerSec, stepsPerSec,
      elapsedSec: (t - this.startedAt) / 1000, etaSec,
      stats: s === undefined ? NO_STATS : {
        verified: s.verified, disputes: s.disputes, quarantined: s.quarantined, speculated: s.speculated, reassigned: s.reassigned, refereed: s.refereed,
      },
    };
  }

  private workerList(): WorkerSummary[] {
    return this.workers?.summaries() ?? [];
  }

  private cursor(): StatusCursor {
    return { lossEpoch: this.lossEpoch, losses: this.losses.length, evals: this.evals.length, events: this.eventCount };
  }

  /** Halves the loss series: each pair of points becomes one at the later step, with the mean of the two. */
  private thin(): void {
    const merged: LossPoint[] = [];
    for (let i = 0; i + 1 < this.losses.length; i += 2) merged.push([this.losses[i + 1][0], (this.losses[i][1] + this.losses[i + 1][1]) / 2]);
    if (this.losses.length % 2 === 1) {
      // The odd one out waits for its partner.
      const [, loss] = this.losses[this.losses.length - 1];
      this.pending = { sum: this.pending.sum + loss * this.lossStride, count: this.pending.count + this.lossStride };
    }
    this.losses.splice(0, this.losses.length, ...merged);
    this.lossStride *= 2;
    this.lossEpoch++;
  }
}

/**
 * A ProgressSink that also feeds the run status: the training loop keeps
 * talking to its one sink, and the dashboard sees what the terminal sees.
 */
export function teeProgress(sink: ProgressSink, status: RunStatus, stepsPerEpoch: () => number): ProgressSink {
  return {
    start(total, first, workers) {
      status.start(total, first, stepsPerEpoch());
      sink.start(total, first, workers);
    },
    step(info) {
      status.stepDone(info);
      sink.step(info);
    },
    epoch(info) {
      status.evaluated({
        epoch: info.epoch, step: info.step, trainLoss: info.trainLoss, testLoss: info.test.loss,
        accuracy: info.test.accuracy ?? null, f1Macro: info.test.f1Macro ?? null,
      });
      sink.epoch(info);
    },
    checkpoint(info) {
      sink.checkpoint?.(info);
    },
    note(line) {
      status.note(line);
      sink.note?.(line);
    },
    stop() {
      sink.stop();
    },
  };
}
