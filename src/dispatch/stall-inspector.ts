// The stall inspector (Horovod has one of the same name): per step, a timer
// for the next deadline of an open attempt. With a step timeout, an attempt
// past it is given up on (its range reassigned, a late answer ignored), a
// process or tab silent for twice the timeout is dropped, and a straggler's
// range is duplicated to an idle worker (speculative execution: the first
// valid answer wins). Without one, it only warns every stallWarnMs, naming
// the missing workers. It decides; the dispatcher (its host) acts.
import type { DispatchStats } from './contract.js';
import type { Clock } from './clock.js';
import { shardLabel } from './ranges.js';
import { covers, describe, who, type Attempt, type Member, type Round, type Slot } from './round.js';

/** What the inspector reads of the dispatcher, and the moves it asks of it. */
export interface InspectorHost {
  readonly clock: Clock;
  readonly stepTimeoutMs: number;
  readonly stallWarnMs: number;
  readonly maxAttempts: number;
  readonly speculateFactor: number;
  readonly speculateSlackMs: number;
  readonly timing: DispatchStats;
  log(line: string): void;
  members(): Iterable<Member>;
  /** Every open attempt, of any step. */
  attempts(): Iterable<Attempt>;
  settle(r: Round, err: Error | null): void;
  schedule(): void;
  dispatch(r: Round, slot: Slot, m: Member): void;
  offense(m: Member, reason: string, a?: Attempt): void;
  exhausted(r: Round, slot: Slot, what: string): Error;
}

export class StallInspector {
  constructor(private readonly host: InspectorHost) {}

  /**
   * The stall inspector: a timer for the oldest open attempt's deadline.
   * Without a step timeout it only warns, every stallWarnMs, naming the
   * missing workers (Horovod's stall inspector does the same).
   */
  arm(r: Round): void {
    r.timer?.cancel();
    r.timer = null;
    if (r.settled) return;
    const open = r.slots.flatMap((s) => (s.answer === null ? s.attempts.filter((a) => a.open && !a.timedOut) : []));
    const timeout = this.host.stepTimeoutMs;
    const due: number[] = this.stragglers(r).map((x) => x.at);
    if (timeout > 0) {
      // Also the moment a worker's oldest unanswered task (of any step) is twice the timeout old: see reap().
      const silent = [...this.host.attempts()].filter((a) => a.member.info.kind !== 'thread').map((a) => a.startedAt + 2 * timeout);
      due.push(...open.map((a) => a.startedAt + timeout), ...silent);
    } else if (r.slots.length > 0 && open.length > 0) {
      due.push(r.lastWarnAt + this.host.stallWarnMs);
    }
    if (due.length === 0) return;
    r.timer = this.host.clock.setTimer(() => this.inspect(r), Math.min(...due) - this.host.clock.now());
  }

  private inspect(r: Round): void {
    r.timer = null;
    if (r.settled) return;
    const now = this.host.clock.now();
    const timeout = this.host.stepTimeoutMs;
    const missing = r.slots.filter((s) => s.answer === null);
    if (timeout <= 0) {
      if (now >= r.lastWarnAt + this.host.stallWarnMs) {
        r.lastWarnAt = now;
        this.host.log(`step ${r.step}: stalled: ${missing.length} of ${r.slots.length} ranges missing after ${Math.round(now - r.startedAt)} ms: ` +
          `${describe(missing)}; still waiting (no step timeout, so not reassigning)`);
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
      this.host.log(`step ${r.step}: stalled: ${slots.length} of ${r.slots.length} ranges missing after ${timeout} ms: ${describe(slots)}; ` +
        'reassigning their micro-shards (a late answer will be ignored)');
      for (const a of overdue) {
        a.timedOut = true;
        a.member.faults++;
        a.slot.reasons.push(`${who(a.member)}: no answer within ${timeout} ms`);
        a.slot.failures++;
        if (a.slot.failures >= this.host.maxAttempts) {
          this.host.settle(r, this.host.exhausted(r, a.slot, `failed ${a.slot.failures} times`));
          return;
        }
      }
    }
    this.speculate(r, now);
    this.host.schedule();
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
    if (this.host.speculateFactor <= 0 || this.host.stepTimeoutMs <= 0) return [];
    const idle = [...this.host.members()].filter((m) => m.open.size === 0);
    if (idle.length === 0) return [];
    const out: { attempt: Attempt; at: number; expectedMs: number }[] = [];
    for (const slot of r.slots) {
      if (slot.answer !== null) continue;
      for (const a of slot.attempts) {
        const m = a.member;
        if (!covers(a) || a.faulted || m.info.kind === 'thread' || !(m.speed > 0)) continue;
        if (!idle.some((x) => x !== m && x !== slot.candidate?.member)) continue;
        const expectedMs = (slot.samples.reduce((t, x) => t + x, 0) / m.speed) * 1000;
        out.push({ attempt: a, at: a.startedAt + this.host.speculateFactor * expectedMs + this.host.speculateSlackMs, expectedMs });
      }
    }
    return out;
  }

  /** Duplicates the ranges of stragglers to idle workers (speculative execution): the first valid answer wins. */
  private speculate(r: Round, now: number): void {
    for (const { attempt: a, expectedMs } of this.stragglers(r).filter((x) => x.at <= now).sort((x, y) => x.at - y.at)) {
      const slot = a.slot;
      const idle = [...this.host.members()].filter((m) => m.open.size === 0 && m !== a.member && m !== slot.candidate?.member);
      const tried = new Set(slot.attempts.map((x) => x.member));
      const pick = idle.find((m) => !tried.has(m)) ?? idle[0];
      if (pick === undefined) return;
      a.duplicated = true;
      this.host.timing.speculated++;
      this.host.log(`step ${r.step}: ${who(a.member)} is a straggler: micro-shards ${shardLabel(slot)} open for ${Math.round(now - a.startedAt)} ms, ` +
        `expected ${Math.round(expectedMs)} ms at its ${Math.round(a.member.speed)} samples/s; duplicating them to ${who(pick)} (the first answer wins)`);
      this.host.dispatch(r, slot, pick);
      if (r.settled) return;
    }
  }

  /**
   * Drops a process or tab that has left a task unanswered for twice the
   * step timeout: its range went elsewhere long ago, and a worker that is
   * connected but never answers would otherwise sit busy forever.
   */
  private reap(now: number, timeout: number): void {
    for (const a of [...this.host.attempts()]) {
      if (!a.open || a.member.gone || a.member.info.kind === 'thread' || now - a.startedAt < 2 * timeout) continue;
      this.host.offense(a.member, `never answered task ${a.taskId} (micro-shards ${shardLabel(a.slot)}) in ${Math.round(now - a.startedAt)} ms, twice the step timeout`, a);
    }
  }
}
