import { describe, expect, it } from 'vitest';
import { describeStall, shardLabel, splitRanges, StepRound } from '../../coordinator/scheduler.js';
import { checkChaosWorkers, faultFor, parseChaos } from '../../coordinator/chaos.js';

describe('splitRanges', () => {
  it('cuts K micro-shards into contiguous equal ranges, one per slot, in slot order', () => {
    expect(splitRanges(8, [1, 1])).toEqual([{ slot: 0, start: 0, end: 4 }, { slot: 1, start: 4, end: 8 }]);
    expect(splitRanges(8, [1, 1, 1])).toEqual([{ slot: 0, start: 0, end: 3 }, { slot: 1, start: 3, end: 5 }, { slot: 2, start: 5, end: 8 }]);
    expect(splitRanges(5, [1])).toEqual([{ slot: 0, start: 0, end: 5 }]);
  });

  it('tiles [0, K) for every K and slot count, skipping slots with nothing to do', () => {
    for (let k = 1; k <= 33; k++) {
      for (let n = 1; n <= 7; n++) {
        const r = splitRanges(k, new Array(n).fill(1));
        expect(r[0].start).toBe(0);
        expect(r[r.length - 1].end).toBe(k);
        for (let i = 1; i < r.length; i++) expect(r[i].start).toBe(r[i - 1].end);
        for (const x of r) expect(x.end).toBeGreaterThan(x.start);
        expect(r.length).toBe(Math.min(k, n));
      }
    }
  });

  it('gives faster slots (larger weights) more micro-shards', () => {
    expect(splitRanges(12, [3, 1])).toEqual([{ slot: 0, start: 0, end: 9 }, { slot: 1, start: 9, end: 12 }]);
    expect(splitRanges(4, [0, 1])).toEqual([{ slot: 1, start: 0, end: 4 }]);
  });

  it('labels ranges the way stall messages print them', () => {
    expect(shardLabel({ start: 0, end: 4 })).toBe('0-3');
    expect(shardLabel({ start: 5, end: 6 })).toBe('5');
  });
});

describe('StepRound', () => {
  const ranges = splitRanges(8, [1, 1]);

  it('completes when every range has an accepted answer', () => {
    const round = new StepRound<string>(1, ranges, 3);
    round.begin(0, 10, 0);
    round.begin(1, 11, 0);
    expect(round.accept(10, 'a')).toBe(true);
    expect(round.isComplete()).toBe(false);
    expect(round.missing().map((r) => r.range.slot)).toEqual([1]);
    expect(round.accept(11, 'b')).toBe(true);
    expect(round.isComplete()).toBe(true);
  });

  it('retries a failed range until maxAttempts, then gives up', () => {
    const round = new StepRound<string>(1, ranges, 2);
    round.begin(0, 1, 0);
    expect(round.fail(1, 'threw')).toBe('retry');
    round.begin(0, 2, 0);
    expect(round.fail(2, 'exited')).toBe('exhausted');
    expect(round.ranges[0].failures).toEqual(['threw', 'exited']);
  });

  it('ignores the answer of a superseded attempt (a late answer) and accepts the current one', () => {
    const round = new StepRound<string>(1, ranges, 3);
    round.begin(0, 1, 0);
    round.begin(1, 2, 0);
    round.accept(2, 'b');
    expect(round.overdue(100, 100).map((r) => r.range.slot)).toEqual([0]);
    expect(round.overdue(99, 100)).toEqual([]);
    round.begin(0, 3, 100); // reassigned
    expect(round.accept(1, 'late')).toBe(false);
    expect(round.fail(1, 'late failure')).toBe('late');
    expect(round.accept(3, 'a')).toBe(true);
    expect(round.ranges[0].result).toBe('a');
    expect(round.accept(3, 'twice')).toBe(false);
    expect(round.rangeOfTask(1)?.range.slot).toBe(0);
  });

  it('knows the next deadline of the stall inspector', () => {
    const round = new StepRound<string>(1, ranges, 3);
    expect(round.nextDeadline(50)).toBe(Infinity);
    round.begin(0, 1, 10);
    round.begin(1, 2, 20);
    expect(round.nextDeadline(50)).toBe(60);
    round.accept(1, 'a');
    expect(round.nextDeadline(50)).toBe(70);
  });

  it('names the missing workers and micro-shards in a stall message', () => {
    const round = new StepRound<string>(50, splitRanges(8, [1, 1, 1]), 3);
    round.begin(0, 1, 0);
    round.begin(1, 2, 0);
    round.begin(2, 3, 0);
    round.accept(2, 'x');
    const msg = describeStall(50, round.overdue(600, 500), 500, 3, 'reassigning');
    expect(msg).toBe('step 50: stalled: 2 of 3 ranges missing after 500 ms: worker 0 (micro-shards 0-2, attempt 1), worker 2 (micro-shards 5-7, attempt 1); reassigning');
  });
});

describe('chaos specs', () => {
  it('parses every fault kind', () => {
    expect(parseChaos('crash:worker=1,step=30; stall:worker=0,step=50,ms=2000;throw:worker=0,step=7;garble:worker=1,step=2;corrupt:worker=0,step=3,index=123')).toEqual([
      { kind: 'crash', worker: 1, step: 30 },
      { kind: 'stall', worker: 0, step: 50, ms: 2000 },
      { kind: 'throw', worker: 0, step: 7 },
      { kind: 'garble', worker: 1, step: 2 },
      { kind: 'corrupt', worker: 0, step: 3, index: 123 },
    ]);
    expect(parseChaos('')).toEqual([]);
  });

  it('refuses bad specs with a message naming the part', () => {
    expect(() => parseChaos('explode:worker=1,step=3')).toThrow(/unknown fault kind "explode"/);
    expect(() => parseChaos('crash:worker=1')).toThrow(/crash needs step=N/);
    expect(() => parseChaos('stall:worker=0,step=5')).toThrow(/stall needs ms=N/);
    expect(() => parseChaos('crash:worker=x,step=3')).toThrow(/worker must be a whole number, got "x"/);
    expect(() => parseChaos('crash:worker=1,step=3,ms=5')).toThrow(/unknown key "ms" for crash/);
    expect(() => parseChaos('crash:worker=1,step=0')).toThrow(/step counts from 1/);
  });

  it('finds the fault of a (step, slot) and checks slots against the worker count', () => {
    const faults = parseChaos('crash:worker=1,step=30;throw:worker=0,step=30');
    expect(faultFor(faults, 30, 1)?.kind).toBe('crash');
    expect(faultFor(faults, 30, 0)?.kind).toBe('throw');
    expect(faultFor(faults, 29, 1)).toBeUndefined();
    expect(checkChaosWorkers(faults, 2)).toBeNull();
    expect(checkChaosWorkers(faults, 1)).toMatch(/worker=1, but there are only 1 worker slots/);
    expect(checkChaosWorkers(faults, 0)).toMatch(/--workers 1 or more/);
  });
});
