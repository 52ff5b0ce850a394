// The training set in a volunteer tab: named by its SHA-256, kept in this
// browser's IndexedDB, so a returning tab (a reload, a later run on the same
// data) downloads nothing. IndexedDB rather than the Cache API: the Cache
// API exists only in secure contexts (https, localhost), and a classroom's
// coordinator is often plain http on a LAN address. Storage belongs to the
// page's origin (scheme, host and port): the same coordinator address finds
// it again. Whatever is read back is hashed again before it is used.
import { sha256Hex } from '../../src/data/sha256.js';
import type { DatasetRef } from '../../src/protocol/messages.js';

const DB_NAME = 'dptrain';
const STORE = 'datasets';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB: cannot open'));
  });
}

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function readStored(hash: string): Promise<ArrayBuffer | null> {
  const db = await openDb();
  try {
    const value: unknown = await request(db.transaction(STORE, 'readonly').objectStore(STORE).get(hash));
    return value instanceof ArrayBuffer ? value : null;
  } finally {
    db.close();
  }
}

/** Keeps only this dataset: a volunteer's disk holds one training set, not every run's. */
async function store(hash: string, blob: ArrayBuffer): Promise<void> {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, 'readwrite');
    const os = tx.objectStore(STORE);
    os.clear();
    os.put(blob, hash);
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB: write failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB: write aborted'));
    });
  } finally {
    db.close();
  }
}

export interface LoadedDataset {
  blob: ArrayBuffer;
  source: 'download' | 'cache';
  /** Bytes downloaded (0 from the cache). */
  bytes: number;
}

/**
 * The dataset `ref` names: from IndexedDB if a copy with that hash is there,
 * else downloaded from the coordinator (with the token) and stored.
 * `progress` hears the bytes received so far.
 */
export async function loadDataset(ref: DatasetRef, token: string, progress: (received: number) => void, log: (line: string) => void): Promise<LoadedDataset> {
  const stored = await readStored(ref.hash).catch((err: Error) => { log(`IndexedDB unavailable (${err.message}): downloading`); return null; });
  if (stored !== null) {
    if (sha256Hex(new Uint8Array(stored)) === ref.hash) return { blob: stored, source: 'cache', bytes: 0 };
    log('the stored copy of the dataset does not match its hash: downloading it again');
  }
  const res = await fetch(ref.path, { headers: token === '' ? {} : { authorization: `Bearer ${token}` }, cache: 'no-store' });
  if (!res.ok || res.body === null) throw new Error(`GET ${ref.path}: HTTP ${res.status} ${res.statusText}`.trim());
  // Read into one buffer of the announced size: a coordinator cannot make the tab hold more.
  const blob = new Uint8Array(ref.bytes);
  let at = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.length > blob.length) throw new Error(`GET ${ref.path}: more than the announced ${ref.bytes} bytes`);
    blob.set(value, at);
    at += value.length;
    progress(at);
  }
  if (at !== ref.bytes) throw new Error(`GET ${ref.path}: ${at} bytes, ${ref.bytes} announced`);
  const got = sha256Hex(blob);
  if (got !== ref.hash) throw new Error(`the downloaded dataset hashes to ${got}, expected ${ref.hash}`);
  await store(ref.hash, blob.buffer).catch((err: Error) => log(`could not keep the dataset in IndexedDB (${err.message}): a reload downloads it again`));
  return { blob: blob.buffer, source: 'download', bytes: at };
}
