// A Clock whose time moves only when a test says so: timers fire in order of
// their due time as advance() passes it. Dispatcher tests use it to make a
// worker stall for exactly as long as they want, with no real sleeping.
import type { Clock, Timer } from '../../src/dispatch/clock.js';

interface Pending { at: number; seq: number; fn: () => void; cancelled: boolean }

export class FakeClock implements Clock {
  private time = 0;
  private seq = 0;
  private pending: Pending[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const p: Pending = { at: this.time + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  /** Moves time forward by ms, firing every timer that falls due, in order (timers set meanwhile included). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.pending.splice(this.pending.indexOf(due), 1);
      this.time = Math.max(this.time, due.at);
      due.fn();
    }
    this.time = end;
  }

  /** Timers still waiting. */
  get timers(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }
}
