// The simulator's time: a queue of events in time order, and a Clock (the
// dispatcher's own interface, src/dispatch/clock.ts) over it, so the
// real dispatcher's stall timers run on simulated time. Events at the same
// moment run in the order they were scheduled.
import type { Clock, Timer } from '../../src/dispatch/clock.js';

interface Event {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class EventQueue implements Clock {
  private heap: Event[] = [];
  private seq = 0;
  private time = 0;
  /** Events run so far (the sim's own cost, for its report). */
  ran = 0;

  now(): number {
    return this.time;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const e = this.push(this.time + Math.max(0, ms), fn);
    return { cancel: () => { e.cancelled = true; } };
  }

  /** Runs fn at absolute time `at` (not before now). */
  at(at: number, fn: () => void): Timer {
    return this.setTimer(fn, at - this.time);
  }

  /**
   * Runs events until `done()` says so, letting promise callbacks run between
   * events (the dispatcher settles a step through a promise). Throws if the
   * queue runs dry first: the simulated run is stuck.
   */
  async drive(done: () => boolean, what: string): Promise<void> {
    while (!done()) {
      if (!this.step()) {
        // Promise callbacks may still schedule events: let every pending one run before calling it stuck.
        await new Promise((resolve) => setImmediate(resolve));
        if (this.heap.length === 0 && !done()) throw new Error(`simulation stuck: no event left while waiting for ${what} at ${this.time.toFixed(3)} ms`);
        continue;
      }
      await Promise.resolve(); // a microtask turn: the promise callbacks of the event just run
    }
  }

  /** Runs the next event; false if there is none. */
  step(): boolean {
    while (this.heap.length > 0) {
      const e = this.pop();
      if (e.cancelled) continue;
      this.time = e.at;
      this.ran++;
      e.fn();
      return true;
    }
    return false;
  }

  /** Runs events until none is left or `until` (a predicate checked after each) says stop. */
  run(until: () => boolean = () => false): void {
    while (this.heap.length > 0 && !until()) {
      const e = this.pop();
      if (e.cancelled) continue;
      this.time = e.at;
      this.ran++;
      e.fn();
    }
  }

  private push(at: number, fn: () => void): Event {
    const e: Event = { at, seq: this.seq++, fn, cancelled: false };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    return e;
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
