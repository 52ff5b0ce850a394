// Scheduling one step's micro-shards over worker slots, with no threads and
// no clocks of its own (the engine passes `now`), so it is tested directly:
//
//   1. splitRanges cuts the K micro-shards into one contiguous range per slot,
//      proportional to the slots' weights (equal weights: an equal split;
//      measured speeds, when an engine has them, give faster slots more);
//   2. a StepRound follows each range through its attempts: begin (a task is
//      dispatched), accept (a valid answer of the CURRENT attempt), fail (the
//      thread threw, exited or answered garbage: the range is dispatched
//      again), overdue (the stall inspector: ranges whose current attempt is
//      older than the step timeout are reassigned; the old attempt's answer,
//      if it ever comes, is ignored as late);
//   3. the step is complete when every range has an accepted answer; the
//      partial sums are then combined in the fixed tree order (reduce/tree.ts),
//      so who computed what, and how often, does not change a bit.

export interface SlotRange {
  /** Logical slot (what --chaos calls worker). */
  readonly slot: number;
  /** Micro-shards [start, end). */
  readonly start: number;
  readonly end: number;
}

/**
 * Contiguous ranges tiling [0, k), one per slot with a positive share, in
 * slot order, sizes proportional to `weights` (rounded at the cumulative
 * boundaries). Slots whose share rounds to nothing get no range.
 */
export function splitRanges(k: number, weights: readonly number[]): SlotRange[] {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`micro-shard count must be a positive integer, got ${k}`);
  if (weights.length === 0) throw new RangeError('no worker slots');
  const total = weights.reduce((a, w) => a + Math.max(0, w), 0);
  const share = total > 0 ? weights.map((w) => Math.max(0, w) / total) : weights.map(() => 1 / weights.length);
  const ranges: SlotRange[] = [];
  let cumulative = 0;
  let start = 0;
  for (let slot = 0; slot < share.length; slot++) {
    cumulative += share[slot];
    const end = slot === share.length - 1 ? k : Math.min(k, Math.round(cumulative * k));
    if (end > start) {
      ranges.push({ slot, start, end });
      start = end;
    }
  }
  return ranges;
}

/** "0-3" for micro-shards [0, 4), "5" for [5, 6). */
export function shardLabel(r: { start: number; end: number }): string {
  return r.end - r.start === 1 ? `${r.start}` : `${r.start}-${r.end - 1}`;
}

export interface Attempt {
  readonly taskId: number;
  readonly attempt: number;
  readonly startedAt: number;
}

export interface RangeState<R> {
  readonly range: SlotRange;
  /** Attempts dispatched so far. */
  attempts: number;
  /** The attempt whose answer counts (null before the first dispatch). */
  current: Attempt | null;
  result: R | null;
  /** Why earlier attempts failed, oldest first. */
  readonly failures: string[];
}

export type FailOutcome = 'retry' | 'exhausted' | 'late';

export class StepRound<R> {
  readonly ranges: RangeState<R>[];
  private readonly byTask = new Map<number, RangeState<R>>();

  constructor(readonly step: number, ranges: readonly SlotRange[], readonly maxAttempts: number) {
    this.ranges = ranges.map((range) => ({ range, attempts: 0, current: null, result: null, failures: [] }));
  }

  /** Records a dispatch of range i as task `taskId`; the range's earlier attempts stop counting. */
  begin(i: number, taskId: number, now: number): Attempt {
    const r = this.ranges[i];
    if (r.result !== null) throw new Error(`range ${i} of step ${this.step} is already done`);
    const a: Attempt = { taskId, attempt: r.attempts, startedAt: now };
    r.attempts++;
    r.current = a;
    this.byTask.set(taskId, r);
    return a;
  }

  /** The range whose CURRENT attempt is `taskId`, or null (unknown, superseded or done: a late answer). */
  currentRange(taskId: number): RangeState<R> | null {
    const r = this.byTask.get(taskId);
    if (r === undefined || r.result !== null || r.current?.taskId !== taskId) return null;
    return r;
  }

  /** The range task `taskId` was dispatched for, current or not. */
  rangeOfTask(taskId: number): RangeState<R> | null {
    return this.byTask.get(taskId) ?? null;
  }

  /** A valid answer. Returns false (and keeps nothing) if it is late. */
  accept(taskId: number, result: R): boolean {
    const r = this.currentRange(taskId);
    if (r === null) return false;
    r.result = result;
    return true;
  }

  /** A failed attempt: retry, give up (after maxAttempts), or ignore (a late attempt failing). */
  fail(taskId: number, reason: string): FailOutcome {
    const r = this.currentRange(taskId);
    if (r === null) return 'late';
    r.failures.push(reason);
    return r.attempts >= this.maxAttempts ? 'exhausted' : 'retry';
  }

  /** Open ranges whose current attempt started at least timeoutMs before now. */
  overdue(now: number, timeoutMs: number): RangeState<R>[] {
    return this.missing().filter((r) => r.current !== null && now - r.current.startedAt >= timeoutMs);
  }

  /** Ranges still without an accepted answer. */
  missing(): RangeState<R>[] {
    return this.ranges.filter((r) => r.result === null);
  }

  isComplete(): boolean {
    return this.ranges.every((r) => r.result !== null);
  }

  /** When the next attempt becomes overdue (Infinity if none is open). */
  nextDeadline(timeoutMs: number): number {
    let t = Infinity;
    for (const r of this.missing()) if (r.current !== null) t = Math.min(t, r.current.startedAt + timeoutMs);
    return t;
  }
}

/** The stall inspector's message (Horovod style: name the missing parties). */
export function describeStall(step: number, missing: readonly RangeState<unknown>[], waitedMs: number, total: number, action: string): string {
  const who = missing.map((r) => `worker ${r.range.slot} (micro-shards ${shardLabel(r.range)}, attempt ${(r.current?.attempt ?? 0) + 1})`).join(', ');
  return `step ${step}: stalled: ${missing.length} of ${total} ranges missing after ${Math.round(waitedMs)} ms: ${who}; ${action}`;
}
