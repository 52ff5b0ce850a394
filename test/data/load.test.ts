import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTrainData } from '../../coordinator/data/load.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-load-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadTrainData', () => {
  it('MNIST: limits and the row view', async () => {
    const d = await loadTrainData({ type: 'mnist', view: 'rows', trainLimit: 100 }, { cacheDir: dir });
    expect(d.train.n).toBe(100);
    expect(d.train.xShape).toEqual([28, 28]);
    expect(d.train.x.length).toBe(100 * 784);
    expect(d.test.n).toBe(2000);
    expect(d.trainHash).toBeUndefined();
    expect(d.testHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('CSV: relative to baseDir; a test set is required', async () => {
    await writeFile(join(dir, 'd.csv'), 'a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n');
    const d = await loadTrainData({ type: 'csv', train: 'd.csv', label: 'y', testFraction: 0.2 }, { baseDir: dir });
    expect([d.train.n, d.test.n]).toEqual([4, 1]);
    expect(d.classNames).toEqual(['0', '1']);
    await expect(loadTrainData({ type: 'csv', train: 'd.csv', label: 'y' }, { baseDir: dir }))
      .rejects.toMatchObject({ code: 'DPT_ERR_CONFIG', message: expect.stringMatching(/data\.test .* data\.testFraction/) });
  });
});
