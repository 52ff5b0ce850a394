import { describe, expect, it } from 'vitest';
import { type Dataset, isShared, sampleSize, split, subset, toShared, validateDataset, viewAs } from '../../src/data/dataset.js';
import { DptrainError } from '../../src/errors.js';

function toy(n = 5): Dataset {
  const x = new Float32Array(n * 6);
  for (let i = 0; i < x.length; i++) x[i] = i;
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = i % 3;
  return { name: 'toy', x, y, n, xShape: [6], yShape: [], numClasses: 3 };
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DptrainError);
    return `${(e as DptrainError).code}: ${(e as Error).message}`;
  }
  throw new Error('expected an error');
}

describe('dataset', () => {
  it('sampleSize', () => {
    expect(sampleSize([])).toBe(1);
    expect(sampleSize([784])).toBe(784);
    expect(sampleSize([28, 28])).toBe(784);
  });

  it('viewAs shares the buffer and checks the size', () => {
    const ds = toy();
    const v = viewAs(ds, [2, 3]);
    expect(v.x).toBe(ds.x);
    expect(v.xShape).toEqual([2, 3]);
    expect(ds.xShape).toEqual([6]);
    expect(code(() => viewAs(ds, [4, 2]))).toMatch(/DPT_ERR_SHAPE: .*6 features.*\[4, 2\]/);
  });

  it('subset copies rows in order, split views without copying', () => {
    const ds = toy();
    const s = subset(ds, [4, 0, 4]);
    expect(s.n).toBe(3);
    expect(Array.from(s.x.subarray(0, 6))).toEqual([24, 25, 26, 27, 28, 29]);
    expect(Array.from(s.y)).toEqual([1, 0, 1]);
    expect(code(() => subset(ds, [5]))).toMatch(/DPT_ERR_DATASET: .*index 5/);
    const [a, b] = split(ds, 2);
    expect([a.n, b.n]).toEqual([2, 3]);
    expect(a.x.buffer).toBe(ds.x.buffer);
    expect(b.x[0]).toBe(12);
    expect(b.y[0]).toBe(2);
    validateDataset(a);
    validateDataset(b);
  });

  it('toShared copies onto SharedArrayBuffers, and helpers keep them shared', () => {
    const ds = toy();
    expect(isShared(ds.x)).toBe(false);
    const sh = toShared(ds);
    expect(isShared(sh.x) && isShared(sh.y)).toBe(true);
    expect(Array.from(sh.x)).toEqual(Array.from(ds.x));
    const v = viewAs(sh, [3, 2]);
    expect(isShared(v.x)).toBe(true);
    expect(isShared(split(sh, 1)[1].x)).toBe(true);
    validateDataset(sh);
  });

  it('validateDataset names what is wrong', () => {
    expect(code(() => validateDataset({ ...toy(), n: 4 }))).toMatch(/x has 30 floats, expected .* 24/);
    const bad = toy();
    bad.y[3] = 3;
    expect(code(() => validateDataset(bad))).toMatch(/label of sample 3 is 3, expected an integer class id in 0\.\.2/);
    bad.y[3] = NaN;
    expect(code(() => validateDataset(bad))).toMatch(/label of sample 3 is NaN/);
    bad.y[3] = 0.5;
    expect(code(() => validateDataset(bad))).toMatch(/label of sample 3 is 0\.5/);
    const badX = toy();
    badX.x[7] = Infinity;
    expect(code(() => validateDataset(badX))).toMatch(/x of sample 1, feature 1 is Infinity/);
    expect(code(() => validateDataset({ ...toy(), yShape: [1] }))).toMatch(/yShape \[\]/);
    expect(code(() => validateDataset({ ...toy(), featureNames: ['a'] }))).toMatch(/featureNames has 1 names/);
  });
});
