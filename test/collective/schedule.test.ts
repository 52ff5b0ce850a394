import { describe, expect, it } from 'vitest';
import { partsOf, planCollective, SLICE_ALIGN, sliceBounds, stepTraffic, vectorBytes } from '../../src/collective/schedule.js';

const equal = (k: number, w: number) => Array.from({ length: w }, (_, i) => ({ start: (i * k) / w, end: ((i + 1) * k) / w, owner: true }));

describe('the collective schedule', () => {
  it('cuts a vector into slices at multiples of 16 floats that tile it', () => {
    for (const len of [1, 15, 16, 17, 100, 101_772, 82_188]) {
      for (let parts = 1; parts <= 9; parts++) {
        let at = 0;
        for (let i = 0; i < parts; i++) {
          const [from, to] = sliceBounds(len, parts, i);
          expect(from).toBe(at);
          expect(to).toBeGreaterThanOrEqual(from);
          if (i < parts - 1) expect(to % SLICE_ALIGN).toBe(0);
          at = to;
        }
        expect(at).toBe(len);
      }
    }
    expect(() => sliceBounds(10, 2, 2)).toThrow(/slice 2 of 2/);
  });

  it('refuses ranges that do not tile the micro-shards, naming the contributor', () => {
    expect(() => planCollective(8, 10, [{ start: 0, end: 4, owner: true }, { start: 5, end: 8, owner: true }])).toThrow(/contributor 1: micro-shards \[5, 8\) do not follow \[0, 4\)/);
    expect(() => planCollective(8, 10, [{ start: 0, end: 4, owner: true }])).toThrow(/cover \[0, 4\), not \[0, 8\)/);
    expect(() => planCollective(8, 10, [{ start: 0, end: 8, owner: false }])).toThrow(/no contributor owns a slice/);
    expect(() => planCollective(8, 10, [{ start: 0, end: 0, owner: false }, { start: 0, end: 8, owner: true }])).toThrow(/contributor 0: owns no slice and computes nothing/);
  });

  it('says what each contributor sends to whom: the owner\'s slice of each of its blocks, nothing to itself', () => {
    const plan = planCollective(16, 1000, [{ start: 0, end: 5, owner: true }, { start: 5, end: 16, owner: false }, { start: 16, end: 16, owner: true }]);
    expect(plan.owners).toEqual([0, 2]);
    expect(plan.contributors[1].slice).toBe(-1);
    const from0 = partsOf(plan, 0);
    expect(from0).toHaveLength(1);
    expect(from0[0]).toMatchObject({ to: 2, slice: 1, from: 496, end: 1000 });
    expect(from0[0].blocks.map((b) => [b.level, b.index])).toEqual([[2, 0], [0, 4]]);
    expect(partsOf(plan, 1).map((p) => p.to)).toEqual([0, 2]);
    expect(partsOf(plan, 2)).toEqual([]); // an empty range sends nothing
  });

  it('moves the all-reduce\'s bytes: a member sends (2W-1)/W S and receives 2(W-1)/W S, the coordinator receives S', () => {
    const len = 102_400; // a multiple of 16 * W for W = 2, 4, 8: exact fractions
    const S = 4 * len;
    for (const w of [2, 4, 8]) {
      const t = stepTraffic(planCollective(16, len, equal(16, w)), len, 'f32');
      for (const c of t.contributors) {
        expect(c.out).toBe(((2 * w - 1) / w) * S);
        expect(c.in).toBe((2 * (w - 1) / w) * S);
      }
      expect(t.coordinator).toEqual({ out: 0, in: S });
    }
    // bf16 halves the trainable part; the rest stays 4 bytes a float.
    expect(vectorBytes(0, 100, 60, 'bf16')).toBe(60 * 2 + 40 * 4);
    expect(vectorBytes(70, 100, 60, 'bf16', 3)).toBe(3 * 30 * 4);
    const half = stepTraffic(planCollective(16, len, equal(16, 4)), len, 'bf16');
    expect(half.coordinator.in).toBe(S / 2);
  });

  it('counts the coordinator\'s parts when it contributes its star workers\' blocks', () => {
    const len = 1600;
    const plan = planCollective(16, len, [{ start: 0, end: 8, owner: true }, { start: 8, end: 12, owner: true }, { start: 12, end: 16, owner: false }]);
    const t = stepTraffic(plan, len, 'f32');
    // Its one block (level 2) in two slices of 800 floats, out; every slice, in.
    expect(t.coordinator).toEqual({ out: 2 * 800 * 4, in: len * 4 });
    // Member 0: its part to 1, its slice to 1 and to the coordinator; in: the parts of 1 and of the coordinator, the slice of 1.
    expect(t.contributors[0]).toEqual({ out: 3 * 800 * 4, in: 3 * 800 * 4 });
  });
});
