import { describe, expect, it } from 'vitest';
import { alignedBlocks, combineBlocks, nodeKey, reduceNode, treeHeight } from '../../src/reduce/tree.js';
import { uniform } from '../../src/random/counter.js';

const LEN = 37;
function leafVector(i: number, out: Float32Array): void {
  // Values of very different magnitudes, so that a different addition order
  // would change the float32 result.
  for (let j = 0; j < out.length; j++) out[j] = (uniform(7, i, j) - 0.5) * 10 ** ((i * 7 + j) % 9 - 4);
}

function root(k: number): Float32Array {
  const out = new Float32Array(LEN);
  reduceNode(k, treeHeight(k), 0, leafVector, out);
  return out;
}

/** All ways to cut [0, K) into `parts` contiguous non-empty ranges, sampled. */
function cuts(k: number, parts: number, seed: number): number[] {
  const points = new Set<number>();
  let s = 0;
  while (points.size < parts - 1 && s < 1000) {
    const p = 1 + Math.floor(uniform(seed, s++) * (k - 1));
    points.add(p);
  }
  return [0, ...[...points].sort((a, b) => a - b), k];
}

describe('fixed-order tree reduction', () => {
  it('has the expected height', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 16, 17].map(treeHeight)).toEqual([0, 1, 2, 2, 3, 3, 4, 4, 5]);
    expect(() => treeHeight(0)).toThrow(/positive integer/);
  });

  it('tiles a range with maximal aligned blocks', () => {
    expect(alignedBlocks(8, 0, 8).map((b) => [b.level, b.index])).toEqual([[3, 0]]);
    expect(alignedBlocks(8, 1, 7).map((b) => [b.start, b.end])).toEqual([[1, 2], [2, 4], [4, 6], [6, 7]]);
    // A clipped node at the right edge is a valid block: [4, 6) of K = 6 is node (2, 1).
    expect(alignedBlocks(6, 4, 6).map((b) => [b.level, b.index])).toEqual([[2, 1]]);
    for (let k = 1; k <= 20; k++) {
      for (let s = 0; s < k; s++) {
        for (let e = s + 1; e <= k; e++) {
          const blocks = alignedBlocks(k, s, e);
          expect(blocks[0].start).toBe(s);
          expect(blocks[blocks.length - 1].end).toBe(e);
          for (let i = 1; i < blocks.length; i++) expect(blocks[i].start).toBe(blocks[i - 1].end);
          expect(blocks.length).toBeLessThanOrEqual(2 * treeHeight(k) + 1);
        }
      }
    }
  });

  it('gives bit-identical roots however the leaves are split among workers', () => {
    for (const k of [1, 2, 3, 5, 6, 8, 13, 16, 31]) {
      const expected = root(k);
      for (let parts = 1; parts <= Math.min(k, 5); parts++) {
        for (let seed = 0; seed < 4; seed++) {
          const points = cuts(k, parts, seed * 31 + parts);
          const blocks = new Map<string, Float32Array>();
          // Workers answer in reverse order: arrival order must not matter.
          for (let w = points.length - 2; w >= 0; w--) {
            for (const b of alignedBlocks(k, points[w], points[w + 1])) {
              const sum = new Float32Array(LEN);
              reduceNode(k, b.level, b.index, leafVector, sum);
              blocks.set(nodeKey(b.level, b.index), sum);
            }
          }
          const got = new Float32Array(LEN);
          combineBlocks(k, blocks, got);
          expect(Buffer.from(got.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
        }
      }
    }
  });

  it('differs from a naive left-to-right sum (the order really is fixed, not incidental)', () => {
    const k = 13;
    const naive = new Float32Array(LEN);
    const tmp = new Float32Array(LEN);
    for (let i = 0; i < k; i++) { leafVector(i, tmp); for (let j = 0; j < LEN; j++) naive[j] += tmp[j]; }
    expect(Buffer.from(naive.buffer).equals(Buffer.from(root(k).buffer))).toBe(false);
  });

  it('names the missing micro-shard when blocks do not cover all leaves', () => {
    const blocks = new Map<string, Float32Array>();
    for (const b of alignedBlocks(8, 0, 5)) blocks.set(nodeKey(b.level, b.index), new Float32Array(LEN));
    expect(() => combineBlocks(8, blocks, new Float32Array(LEN))).toThrow(/micro-shard 5/);
  });
});
