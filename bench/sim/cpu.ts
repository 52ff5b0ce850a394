// Processors, modelled: a pool of `cores` shared by every job on it
// (processor sharing: n jobs on c cores each run at min(1, c / n) of a core).
// A calibration run puts every process of a netns measurement on one pool
// of this machine's 2 cores; a projection gives each host a pool of its own.
// A job is `work` milliseconds of one core's time; `done` runs when it is
// finished.
import type { EventQueue } from './events.js';

interface Job {
  remaining: number;
  done: () => void;
}

export class CpuPool {
  private jobs: Job[] = [];
  private last = 0;
  private next: { cancel(): void } | null = null;
  /** Core-milliseconds of work done, for utilisation. */
  busy = 0;

  constructor(private readonly q: EventQueue, readonly cores: number) {}

  /** Runs `work` ms of one core's work, then done(). Zero work completes at once (after this event). */
  run(work: number, done: () => void): void {
    this.advance();
    this.jobs.push({ remaining: Math.max(0, work), done });
    this.reschedule();
  }

  private rate(): number {
    return this.jobs.length === 0 ? 0 : Math.min(1, this.cores / this.jobs.length);
  }

  /** Takes the time since the last change off every job's remaining work. */
  private advance(): void {
    const now = this.q.now();
    const dt = now - this.last;
    this.last = now;
    if (dt <= 0 || this.jobs.length === 0) return;
    const r = this.rate();
    for (const j of this.jobs) j.remaining -= dt * r;
    this.busy += dt * r * this.jobs.length;
  }

  private reschedule(): void {
    this.next?.cancel();
    this.next = null;
    if (this.jobs.length === 0) return;
    const r = this.rate();
    const soonest = Math.min(...this.jobs.map((j) => j.remaining));
    this.next = this.q.setTimer(() => this.complete(), Math.max(0, soonest) / r);
  }

  private complete(): void {
    this.next = null;
    this.advance();
    const finished = this.jobs.filter((j) => j.remaining <= 1e-9);
    this.jobs = this.jobs.filter((j) => j.remaining > 1e-9);
    this.reschedule();
    for (const j of finished) j.done();
  }
}
