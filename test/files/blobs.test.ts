import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeDataset } from '../../src/data/binary.js';
import type { Dataset } from '../../src/data/dataset.js';
import { sha256Hex } from '../../src/data/sha256.js';
import { blobPath, loadDatasetFile, readBlob, readCachedBlob, storeDataset, writeBlob } from '../../node/files/blobs.js';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dptrain-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const toy = (): Dataset => ({ name: 'toy', n: 2, xShape: [2], yShape: [], numClasses: 2, x: Float32Array.from([1, 2, 3, 4]), y: Float32Array.from([0, 1]) });

describe('blob files', () => {
  it('writes <sha256>.dptdata atomically and reads it back verified', async () => {
    const blob = encodeDataset(toy());
    const cache = join(dir, 'a', 'b');
    const { hash, path } = await writeBlob(cache, blob);
    expect(hash).toBe(sha256Hex(blob)); // node:crypto and pure TS agree
    expect(path).toBe(blobPath(cache, hash));
    expect(await readdir(cache)).toEqual([`${hash}.dptdata`]); // no temp file left
    const back = await readBlob(path);
    expect(back.hash).toBe(hash);
    expect(back.blob).toEqual(blob);
    expect((await readCachedBlob(cache, hash))?.path).toBe(path);
    expect(await readCachedBlob(cache, 'f'.repeat(64))).toBeUndefined();
    const loaded = await loadDatasetFile(path);
    expect(Array.from(loaded.dataset.x)).toEqual([1, 2, 3, 4]);
    const stored = await storeDataset(cache, toy());
    expect(stored.hash).toBe(hash);
  });

  it('refuses a corrupted or renamed file, naming it', async () => {
    const blob = encodeDataset(toy());
    const { hash, path } = await writeBlob(dir, blob);
    const bytes = await readFile(path);
    bytes[bytes.length - 1] ^= 1;
    await writeFile(path, bytes);
    await expect(readBlob(path)).rejects.toMatchObject({
      code: 'DPT_ERR_DATASET',
      message: expect.stringMatching(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: SHA-256 of the file is [0-9a-f]{64}, expected ${hash}`)),
    });
    await expect(readCachedBlob(dir, hash)).rejects.toMatchObject({ code: 'DPT_ERR_DATASET' });
    const other = join(dir, 'toy.dptdata');
    await writeFile(other, blob);
    expect((await readBlob(other)).hash).toBe(hash); // not named by a hash: nothing to compare with
    await expect(readBlob(other, '0'.repeat(64))).rejects.toThrow(/toy\.dptdata: SHA-256 of the file is/);
    await expect(readBlob(join(dir, 'missing.dptdata'))).rejects.toThrow(/missing\.dptdata: cannot read dataset file/);
  });
});
