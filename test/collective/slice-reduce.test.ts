// The owners' slices put together must be, bit for bit, the star's
// combineBlocks over whole vectors (and so --workers 0's root), for any
// membership, any ranges and either wire.
import { describe, expect, it } from 'vitest';
import { nodeRounding, type GradWire } from '../../src/reduce/bf16.js';
import { alignedBlocks, combineBlocks, nodeKey, reduceNode, treeHeight } from '../../src/reduce/tree.js';
import { uniform } from '../../src/random/counter.js';
import { partsOf, planCollective, type CollectivePlan, type ContributorRange } from '../../src/collective/schedule.js';
import { SliceReducer } from '../../src/collective/slice-reduce.js';

/** Leaf i's vector: values of very different magnitudes, so any other order of additions changes the bits. */
function leaf(seed: number, len: number) {
  return (i: number, out: Float32Array) => {
    for (let j = 0; j < len; j++) out[j] = (uniform(seed, i, j) - 0.5) * 10 ** (((i * 7 + j) % 11) - 5);
  };
}

/** Random contributors tiling [0, k): 1-6 members (some with empty ranges), sometimes a coordinator that owns no slice. */
function randomRanges(k: number, seed: number): ContributorRange[] {
  const n = 1 + Math.floor(uniform(seed, 1) * 6);
  const cuts = Array.from({ length: n - 1 }, (_, i) => Math.floor(uniform(seed, 2, i) * (k + 1))).sort((a, b) => a - b);
  const bounds = [0, ...cuts, k];
  const ranges: ContributorRange[] = [];
  for (let i = 0; i < n; i++) ranges.push({ start: bounds[i], end: bounds[i + 1], owner: true });
  const withStar = uniform(seed, 3) < 0.4;
  const nonEmpty = ranges.map((r, i) => (r.end > r.start ? i : -1)).filter((i) => i >= 0);
  if (withStar && ranges.length > 1) {
    // One non-empty range goes to the coordinator (it owns no slice).
    const pick = nonEmpty[Math.floor(uniform(seed, 4) * nonEmpty.length)];
    ranges[pick] = { ...ranges[pick], owner: false };
    if (!ranges.some((r) => r.owner)) ranges[pick] = { ...ranges[pick], owner: true };
  }
  return ranges;
}

function blocksOf(plan: CollectivePlan, c: number, seed: number, len: number, round: ((v: Float32Array) => void) | undefined): Float32Array[] {
  return plan.contributors[c].blocks.map((b) => {
    const v = new Float32Array(len);
    reduceNode(plan.k, b.level, b.index, leaf(seed, len), v, [], round);
    return v;
  });
}

describe('a slice owner reduces its slice in the tree order', () => {
  for (const wire of ['f32', 'bf16'] as const satisfies readonly GradWire[]) {
    it(`${wire}: the owners' slices are combineBlocks' root, bit for bit, for random memberships and ranges`, () => {
      for (let seed = 0; seed < 160; seed++) {
        const k = 1 + Math.floor(uniform(seed, 5) * 33);
        const len = 1 + Math.floor(uniform(seed, 6) * 300);
        const numTrainable = Math.floor(uniform(seed, 7) * (len + 1));
        const ranges = randomRanges(k, seed);
        const plan = planCollective(k, len, ranges);
        const round = nodeRounding(wire, numTrainable);
        const computed = plan.contributors.map((_, c) => blocksOf(plan, c, seed, len, round));

        // The star: every block whole at the coordinator.
        const all = new Map<string, Float32Array>();
        plan.contributors.forEach((c, i) => c.blocks.forEach((b, j) => all.set(nodeKey(b.level, b.index), computed[i][j])));
        const star = new Float32Array(len);
        combineBlocks(k, all, star, [], round);
        // And --workers 0: the root reduced from the leaves in one go.
        const local = new Float32Array(len);
        reduceNode(k, treeHeight(k), 0, leaf(seed, len), local, [], round);
        expect(Buffer.from(star.buffer).equals(Buffer.from(local.buffer))).toBe(true);

        // The collective: each owner gets every contributor's part of its slice (its own blocks included), in any order.
        const got = new Float32Array(len);
        plan.owners.forEach((o, slice) => {
          const r = new SliceReducer(plan, slice, numTrainable, wire);
          const senders = plan.contributors.map((_, c) => c).filter((c) => plan.contributors[c].blocks.length > 0).reverse();
          for (const c of senders) {
            if (c !== o) expect(partsOf(plan, c).some((p) => p.to === o && p.slice === slice)).toBe(true);
            const sums = new Float32Array(computed[c].length * (r.to - r.from));
            computed[c].forEach((v, j) => sums.set(v.subarray(r.from, r.to), j * (r.to - r.from)));
            expect(r.add(c, plan.contributors[c].blocks, sums)).toBeNull();
          }
          expect(r.complete()).toBe(true);
          r.reduce(got.subarray(r.from, r.to));
        });
        if (!Buffer.from(got.buffer).equals(Buffer.from(star.buffer))) {
          throw new Error(`seed ${seed}: k ${k}, ${len} floats, ranges ${JSON.stringify(ranges)}: the slices differ from combineBlocks`);
        }
      }
    });
  }

  it('refuses parts it cannot take, naming why, and says who is missing', () => {
    const plan = planCollective(8, 64, [{ start: 0, end: 3, owner: true }, { start: 3, end: 8, owner: true }, { start: 8, end: 8, owner: true }]);
    const r = new SliceReducer(plan, 2, 64, 'f32');
    const len = r.to - r.from;
    expect(r.missing()).toEqual([0, 1]);
    const blocks0 = plan.contributors[0].blocks;
    expect(blocks0.map((b) => nodeKey(b.level, b.index))).toEqual(['1:0', '0:2']);
    expect(r.add(2, [], new Float32Array(0))).toMatch(/computes no micro-shard/);
    expect(r.add(0, blocks0.slice(0, 1), new Float32Array(len))).toMatch(/sent blocks 1:0, its range's are 1:0 0:2/);
    expect(r.add(0, blocks0, new Float32Array(len))).toMatch(/sent \d+ floats, 2 blocks of slice 2 need/);
    const bad = new Float32Array(2 * len);
    bad[len + 3] = NaN;
    expect(r.add(0, blocks0, bad)).toMatch(new RegExp(`non-finite value \\(element ${r.from + 3} of block 1\\)`));
    expect(r.add(0, blocks0, new Float32Array(2 * len))).toBeNull();
    expect(r.add(0, blocks0, new Float32Array(2 * len))).toMatch(/twice/);
    expect(() => r.reduce(new Float32Array(len))).toThrow(/parts missing from contributors 1/);
    expect(alignedBlocks(8, 3, 8).length).toBe(plan.contributors[1].blocks.length);
  });
});
