// Dataset blobs on disk, content-addressed: <cacheDir>/<sha256>.dptdata.
// Written atomically (atomic-write.ts: a temporary file beside it, fsync, rename),
// so a reader sees either no file or the whole file; read back with the hash
// recomputed, so a corrupt or truncated file is refused, naming the file.
//
// Hashing here uses node:crypto (several times faster than the pure-TS
// sha256 that browser workers use; test/data/sha256.test.ts shows they agree).

import { createHash } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { dptError } from '../../src/errors.js';
import { type Dataset } from '../../src/data/dataset.js';
import { decodeDataset, encodeDataset } from '../../src/data/binary.js';
import { writeFileAtomic } from './atomic-write.js';

export const BLOB_EXT = '.dptdata';
const HASH_RE = /^[0-9a-f]{64}$/;

/** SHA-256 of bytes as lower-case hex, by node:crypto. */
export function sha256Node(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The path of the blob with this hash in cacheDir. */
export function blobPath(cacheDir: string, hash: string): string {
  if (!HASH_RE.test(hash)) throw dptError('DPT_ERR_DATASET', `"${hash}" is not a SHA-256 hex digest`);
  return join(cacheDir, hash + BLOB_EXT);
}

export interface StoredBlob {
  hash: string;
  path: string;
}

/** Store a blob as <cacheDir>/<sha256>.dptdata (creating cacheDir). */
export async function writeBlob(cacheDir: string, blob: Uint8Array): Promise<StoredBlob> {
  const hash = sha256Node(blob);
  await mkdir(cacheDir, { recursive: true });
  const path = blobPath(cacheDir, hash);
  await writeFileAtomic(path, blob);
  return { hash, path };
}

/**
 * Read a blob and verify its SHA-256: against `expectedHash` if given, and
 * against the file name if it is named <sha256>.dptdata. A mismatch throws
 * DPT_ERR_DATASET naming the file. The returned bytes start at byte offset 0
 * of their own buffer (so x and y can be viewed in place).
 */
export async function readBlob(path: string, expectedHash?: string): Promise<{ blob: Uint8Array; hash: string }> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw dptError('DPT_ERR_DATASET', `${path}: cannot read dataset file: ${(e as Error).message}`);
  }
  const blob = buf.byteOffset % 8 === 0 ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
  const hash = sha256Node(blob);
  const name = basename(path);
  const fromName = name.endsWith(BLOB_EXT) ? name.slice(0, -BLOB_EXT.length) : '';
  const expected = expectedHash?.toLowerCase() ?? (HASH_RE.test(fromName) ? fromName : undefined);
  if (expected !== undefined && hash !== expected) {
    throw dptError('DPT_ERR_DATASET', `${path}: SHA-256 of the file is ${hash}, expected ${expected} (the file is corrupt or was changed; delete it to rebuild)`);
  }
  return { blob, hash };
}

/** The blob with this hash from cacheDir, verified; undefined if there is no such file. */
export async function readCachedBlob(cacheDir: string, hash: string): Promise<{ blob: Uint8Array; hash: string; path: string } | undefined> {
  const path = blobPath(cacheDir, hash);
  try {
    await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const r = await readBlob(path, hash);
  return { ...r, path };
}

/** A dataset together with its blob, its identity and where it is stored. */
export interface LoadedDataset {
  dataset: Dataset;
  blob: Uint8Array;
  hash: string;
  path: string;
}

/** Read, verify and decode a dataset file; errors name the file. */
export async function loadDatasetFile(path: string, expectedHash?: string): Promise<LoadedDataset> {
  const { blob, hash } = await readBlob(path, expectedHash);
  const dataset = decodeDataset(blob, { source: path });
  return { dataset, blob, hash, path };
}

/** Encode a dataset, store it in cacheDir by hash, and return it with its blob. */
export async function storeDataset(cacheDir: string, dataset: Dataset): Promise<LoadedDataset> {
  const blob = encodeDataset(dataset);
  const { hash, path } = await writeBlob(cacheDir, blob);
  return { dataset: decodeDataset(blob, { source: path }), blob, hash, path };
}
