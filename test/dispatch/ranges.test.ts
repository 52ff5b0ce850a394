import { describe, expect, it } from 'vitest';
import { alignedSplit, shardLabel, splitRanges } from '../../src/dispatch/ranges.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { checkChaosWorkers, faultFor, parseChaos } from '../../src/dispatch/chaos.js';

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

describe('alignedSplit', () => {
  it('moves a cut within the tolerance to the most aligned micro-shard, so ranges have fewer aligned blocks', () => {
    // Speeds 0.9 : 1.1 over 16 micro-shards put the plain cut at 7: blocks 0-3,4-5,6 | 7,8-15 (5 sums); aligned at 8: 2 sums.
    const plain = splitRanges(16, [0.9, 1.1]);
    expect(plain[0].end).toBe(7);
    const aligned = alignedSplit(0, 16, [0.9, 1.1], 0.15);
    expect(aligned).toEqual([{ slot: 0, start: 0, end: 8 }, { slot: 1, start: 8, end: 16 }]);
    const blocks = (rs: { start: number; end: number }[]) => rs.reduce((n, r) => n + alignedBlocks(16, r.start, r.end).length, 0);
    expect(blocks(plain)).toBe(5);
    expect(blocks(aligned)).toBe(2);
  });

  it('keeps the proportions beyond the tolerance, tiles the range, and works on a sub-range', () => {
    expect(alignedSplit(0, 16, [3, 1], 0.15)).toEqual([{ slot: 0, start: 0, end: 12 }, { slot: 1, start: 12, end: 16 }]);
    expect(alignedSplit(0, 16, [1, 1], 0)).toEqual([{ slot: 0, start: 0, end: 8 }, { slot: 1, start: 8, end: 16 }]);
    for (let n = 1; n <= 6; n++) {
      for (const [s, e] of [[0, 16], [3, 29], [5, 6], [8, 16]]) {
        const w = Array.from({ length: n }, (_, i) => 1 + 0.1 * i);
        const r = alignedSplit(s, e, w, 0.2);
        expect(r[0].start).toBe(s);
        expect(r[r.length - 1].end).toBe(e);
        for (let i = 1; i < r.length; i++) expect(r[i].start).toBe(r[i - 1].end);
        for (const x of r) expect(x.end).toBeGreaterThan(x.start);
      }
    }
  });
});

describe('chaos specs', () => {
  it('parses every fault kind', () => {
    expect(parseChaos('crash:worker=1,step=30; stall:worker=0,step=50,ms=2000;throw:worker=0,step=7;garble:worker=1,step=2;corrupt:worker=0,step=3,index=123;disconnect:worker=2,step=4')).toEqual([
      { kind: 'crash', worker: 1, step: 30 },
      { kind: 'stall', worker: 0, step: 50, ms: 2000 },
      { kind: 'throw', worker: 0, step: 7 },
      { kind: 'garble', worker: 1, step: 2 },
      { kind: 'corrupt', worker: 0, step: 3, index: 123 },
      { kind: 'disconnect', worker: 2, step: 4 },
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
