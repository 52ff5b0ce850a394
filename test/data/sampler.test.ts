import { describe, expect, it } from 'vitest';
import { BatchSampler, batchesOfEpoch, epochPermutation, locateStep, stepsPerEpoch } from '../../src/data/sampler.js';
import { gather, splitMicroShards } from '../../src/data/microshard.js';
import type { Dataset } from '../../src/data/dataset.js';
import { DptrainError } from '../../src/errors.js';

function isPermutation(p: Uint32Array): boolean {
  const seen = new Uint8Array(p.length);
  for (const v of p) {
    if (v >= p.length || seen[v]) return false;
    seen[v] = 1;
  }
  return true;
}

describe('epochPermutation', () => {
  it('is a permutation, deterministic in (seed, epoch), different across epochs and seeds', () => {
    for (const n of [0, 1, 2, 3, 10, 1000, 8000]) {
      const p = epochPermutation(7, 3, n);
      expect(p.length).toBe(n);
      expect(isPermutation(p)).toBe(true);
      expect(Array.from(epochPermutation(7, 3, n))).toEqual(Array.from(p));
    }
    const a = Array.from(epochPermutation(7, 0, 1000));
    expect(Array.from(epochPermutation(7, 1, 1000))).not.toEqual(a);
    expect(Array.from(epochPermutation(8, 0, 1000))).not.toEqual(a);
    expect(a).not.toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('pins its values (a change would silently change every run and the MNIST split)', () => {
    expect(Array.from(epochPermutation(1, 0, 10))).toEqual([4, 3, 2, 7, 8, 0, 5, 9, 6, 1]);
  });

  it('is roughly uniform: each element lands in each position about equally often', () => {
    const n = 5;
    const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
    const E = 20000;
    for (let e = 0; e < E; e++) {
      const p = epochPermutation(42, e, n);
      for (let pos = 0; pos < n; pos++) counts[p[pos]][pos]++;
    }
    for (const row of counts) for (const c of row) expect(Math.abs(c - E / n)).toBeLessThan(0.05 * E / n);
  });

  it('refuses bad arguments', () => {
    expect(() => epochPermutation(-1, 0, 3)).toThrow(DptrainError);
    expect(() => epochPermutation(0, 0.5, 3)).toThrow(/epoch must be an integer/);
  });
});

describe('batches', () => {
  it('cuts an epoch into batches and keeps the last partial batch', () => {
    const bs = batchesOfEpoch(3, 2, 10, 4);
    expect(bs.map((b) => b.length)).toEqual([4, 4, 2]);
    const all = new Uint32Array(10);
    let k = 0;
    for (const b of bs) for (const i of b) all[k++] = i;
    expect(Array.from(all)).toEqual(Array.from(epochPermutation(3, 2, 10)));
    expect(stepsPerEpoch(10, 4)).toBe(3);
    expect(stepsPerEpoch(12, 4)).toBe(3);
  });

  it('drops a trailing batch shorter than minLastBatch', () => {
    expect(batchesOfEpoch(3, 2, 10, 4, { minLastBatch: 3 }).map((b) => b.length)).toEqual([4, 4]);
    expect(batchesOfEpoch(3, 2, 10, 4, { minLastBatch: 2 }).map((b) => b.length)).toEqual([4, 4, 2]);
    expect(stepsPerEpoch(10, 4, { minLastBatch: 3 })).toBe(2);
  });

  it('locates global steps and the BatchSampler agrees with batchesOfEpoch', () => {
    expect(locateStep(0, 10, 4)).toEqual({ epoch: 0, batch: 0 });
    expect(locateStep(5, 10, 4)).toEqual({ epoch: 1, batch: 2 });
    const s = new BatchSampler(9, 10, 4);
    for (let step = 0; step < 9; step++) {
      const { epoch, batch, indices } = s.batch(step);
      expect(Array.from(indices)).toEqual(Array.from(batchesOfEpoch(9, epoch, 10, 4)[batch]));
    }
  });
});

describe('micro-shards', () => {
  const sizes = (b: number, k: number): number[] => splitMicroShards(b, k).map(([s, e]) => e - s);

  it('splits like numpy.array_split', () => {
    expect(sizes(8, 3)).toEqual([3, 3, 2]);
    expect(splitMicroShards(8, 3)).toEqual([[0, 3], [3, 6], [6, 8]]);
    expect(sizes(10, 4)).toEqual([3, 3, 2, 2]);
    expect(sizes(16, 16)).toEqual(new Array(16).fill(1));
    expect(sizes(7, 1)).toEqual([7]);
    expect(sizes(256, 16)).toEqual(new Array(16).fill(16));
  });

  it('refuses K > batchSize and bad counts', () => {
    expect(() => splitMicroShards(3, 4)).toThrow(/K = 4 exceeds the batch size 3/);
    expect(() => splitMicroShards(3, 0)).toThrow(/positive integer/);
    expect(() => splitMicroShards(0, 1)).toThrow(/batchSize must be a positive integer/);
  });

  it('gather copies the rows of a batch into preallocated buffers', () => {
    const ds: Dataset = {
      name: 't', n: 4, xShape: [2], yShape: [2],
      x: Float32Array.from([0, 1, 10, 11, 20, 21, 30, 31]),
      y: Float32Array.from([0, -1, 1, -2, 2, -3, 3, -4]),
    };
    const xOut = new Float32Array(8).fill(99);
    const yOut = new Float32Array(8).fill(99);
    expect(gather(ds, [3, 1, 3], xOut, yOut)).toBe(3);
    expect(Array.from(xOut)).toEqual([30, 31, 10, 11, 30, 31, 99, 99]);
    expect(Array.from(yOut)).toEqual([3, -4, 1, -2, 3, -4, 99, 99]);
    expect(() => gather(ds, [4], xOut, yOut)).toThrow(/index 4 at row 0/);
    expect(() => gather(ds, [0, 1, 2, 3, 0], xOut, yOut)).toThrow(/xOut holds 8 floats, 5 rows of 2 need 10/);
  });
});
