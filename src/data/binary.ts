// A dataset as ONE binary blob (Uint8Array): what the coordinator caches on
// disk and what workers fetch once and verify by hash. The dataset's identity
// is the SHA-256 of the blob (datasetHash).
//
// Layout (all integers little-endian):
//
//   offset 0    8 bytes   magic "DPTDATA1" (ASCII; the 1 is the format version)
//   offset 8    4 bytes   H = byte length of the JSON header (uint32)
//   offset 12   H bytes   JSON header, UTF-8 (DatasetHeader below)
//               zeros     up to xOffset = align8(12 + H)
//   xOffset     xBytes    x, n * size(xShape) float32 little-endian
//               zeros     up to yOffset = align8(xOffset + xBytes)
//   yOffset     yBytes    y, n * size(yShape) float32 little-endian
//   end = yOffset + yBytes, exactly: no trailing bytes
//
// x and y start at multiples of 8 so that a Float32Array (or a Float64Array
// one day) can view them in place without a copy. The encoding is canonical:
// the header's keys are written in a fixed order and padding must be zero,
// so equal datasets give equal blobs and equal hashes.

import * as z from 'zod';
import { dptError, fmtShape } from '../errors.js';
import { type Dataset, sampleSize, validateDataset } from './dataset.js';
import { type HashFn, sha256Hex } from './sha256.js';

export const DATASET_MAGIC = 'DPTDATA1';
/** The header is small; a larger length means a corrupt or hostile blob. */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
const PREAMBLE = 12;

/** The JSON header of a dataset blob; every field is checked on decode. */
export const DatasetHeader = z.object({
  /** The dataset's name, e.g. "mnist-train". */
  name: z.string().min(1),
  /** Number of samples. */
  n: z.number().int().nonnegative(),
  /** Per-sample feature shape, e.g. [784]. */
  xShape: z.array(z.number().int().positive()).min(1),
  /** Per-sample target shape: [] for a class id, [D] for regression. */
  yShape: z.array(z.number().int().positive()),
  /** Number of classes (classification only). */
  numClasses: z.number().int().min(2).optional(),
  /** One name per feature. */
  featureNames: z.array(z.string()).optional(),
  /** The only element type so far. */
  dtype: z.literal('float32-le'),
  /** Byte offset of x in the blob (a multiple of 8). */
  xOffset: z.number().int().nonnegative(),
  /** Byte length of x. */
  xBytes: z.number().int().nonnegative(),
  /** Byte offset of y in the blob (a multiple of 8). */
  yOffset: z.number().int().nonnegative(),
  /** Byte length of y. */
  yBytes: z.number().int().nonnegative(),
}).strict();
export type DatasetHeader = z.infer<typeof DatasetHeader>;

// TextEncoder/TextDecoder are standard in browsers and Node; reach them
// through globalThis so this file needs neither DOM nor Node typings.
interface Utf8 {
  TextEncoder: new () => { encode(s: string): Uint8Array };
  TextDecoder: new (label?: string, opts?: { fatal?: boolean }) => { decode(b: Uint8Array): string };
}
const utf8 = globalThis as unknown as Utf8;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** The layout the header must describe for these sizes (encode and decode agree through it). */
function layout(headerBytes: number, n: number, xShape: readonly number[], yShape: readonly number[]) {
  const xOffset = align8(PREAMBLE + headerBytes);
  const xBytes = n * sampleSize(xShape) * 4;
  const yOffset = align8(xOffset + xBytes);
  const yBytes = n * sampleSize(yShape) * 4;
  return { xOffset, xBytes, yOffset, yBytes, total: yOffset + yBytes };
}

function writeFloats(out: Uint8Array, offset: number, src: Float32Array): void {
  if (LITTLE_ENDIAN_HOST) {
    out.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), offset);
  } else {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < src.length; i++) view.setFloat32(offset + 4 * i, src[i], true);
  }
}

/**
 * Encode a dataset as one blob. The dataset is validated first (values too),
 * so a blob that encodes always decodes.
 */
export function encodeDataset(ds: Dataset): Uint8Array {
  validateDataset(ds);
  const meta = {
    name: ds.name,
    n: ds.n,
    xShape: ds.xShape.slice(),
    yShape: ds.yShape.slice(),
    ...(ds.numClasses !== undefined ? { numClasses: ds.numClasses } : {}),
    ...(ds.featureNames !== undefined ? { featureNames: ds.featureNames.slice() } : {}),
    dtype: 'float32-le' as const,
  };
  // Iterate to a fixed point: the header length fixes the offsets, which fix
  // the header length. Converges in at most a few rounds (lengths only grow).
  let headerBytes = 0;
  let json: Uint8Array = new Uint8Array(0);
  for (let round = 0; round < 8; round++) {
    const l = layout(headerBytes, ds.n, ds.xShape, ds.yShape);
    const header: DatasetHeader = { ...meta, xOffset: l.xOffset, xBytes: l.xBytes, yOffset: l.yOffset, yBytes: l.yBytes };
    json = new utf8.TextEncoder().encode(JSON.stringify(header));
    if (json.length === headerBytes) break;
    headerBytes = json.length;
  }
  if (json.length !== headerBytes) throw new Error('encodeDataset: header length did not settle (internal error)');
  const l = layout(headerBytes, ds.n, ds.xShape, ds.yShape);
  if (json.length > MAX_HEADER_BYTES) {
    throw dptError('DPT_ERR_DATASET', `dataset "${ds.name}": header is ${json.length} bytes, more than ${MAX_HEADER_BYTES} (too many feature names?)`);
  }
  const blob = new Uint8Array(l.total); // zero-filled: padding is zero
  for (let i = 0; i < DATASET_MAGIC.length; i++) blob[i] = DATASET_MAGIC.charCodeAt(i);
  new DataView(blob.buffer).setUint32(8, json.length, true);
  blob.set(json, PREAMBLE);
  writeFloats(blob, l.xOffset, ds.x);
  writeFloats(blob, l.yOffset, ds.y);
  return blob;
}

export interface DecodeOptions {
  /** Where the blob came from (a file path, a URL): prefixed to every error message. */
  source?: string;
  /** If given, the blob's SHA-256 must equal this (lower-case hex). */
  expectedHash?: string;
  /** Hash function used for expectedHash (default: the pure-TS sha256Hex). */
  hash?: HashFn;
  /**
   * Copy x and y into fresh buffers (default false: view the blob in place
   * when it is 4-byte aligned and the host is little-endian, else copy).
   */
  copy?: boolean;
}

function printable(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  return s;
}

function readFloats(blob: Uint8Array, offset: number, count: number, copy: boolean): Float32Array {
  const start = blob.byteOffset + offset;
  if (LITTLE_ENDIAN_HOST && !copy && start % 4 === 0) {
    return new Float32Array(blob.buffer, start, count);
  }
  const out = new Float32Array(count);
  if (LITTLE_ENDIAN_HOST) {
    new Uint8Array(out.buffer).set(blob.subarray(offset, offset + count * 4));
  } else {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(offset + 4 * i, true);
  }
  return out;
}

function checkZero(blob: Uint8Array, from: number, to: number, fail: (msg: string) => never, what: string): void {
  for (let i = from; i < to; i++) {
    if (blob[i] !== 0) fail(`padding byte ${i} (${what}) is ${blob[i]}, must be 0`);
  }
}

/**
 * Decode and validate a blob: magic, header (zod), layout, lengths, padding,
 * and values (finite features and targets; class labels integral and in
 * 0..numClasses-1). Throws DPT_ERR_DATASET naming what is wrong.
 */
export function decodeDataset(blob: Uint8Array, opts: DecodeOptions = {}): Dataset {
  const src = opts.source ?? 'dataset blob';
  const fail = (msg: string): never => {
    throw dptError('DPT_ERR_DATASET', `${src}: ${msg}`);
  };
  if (!(blob instanceof Uint8Array)) fail('not a Uint8Array');
  if (opts.expectedHash !== undefined) {
    const got = (opts.hash ?? sha256Hex)(blob);
    if (got !== opts.expectedHash.toLowerCase()) fail(`SHA-256 is ${got}, expected ${opts.expectedHash} (corrupt or a different dataset)`);
  }
  if (blob.length < PREAMBLE) fail(`truncated: ${blob.length} bytes, shorter than the ${PREAMBLE}-byte preamble`);
  const magic = blob.subarray(0, 8);
  for (let i = 0; i < 8; i++) {
    if (magic[i] !== DATASET_MAGIC.charCodeAt(i)) {
      fail(`bad magic "${printable(magic)}", expected "${DATASET_MAGIC}" (not a dptrain dataset, or another format version)`);
    }
  }
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const headerBytes = view.getUint32(8, true);
  if (headerBytes > MAX_HEADER_BYTES) fail(`header length ${headerBytes} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  if (PREAMBLE + headerBytes > blob.length) {
    fail(`truncated: the header is ${headerBytes} bytes but only ${blob.length - PREAMBLE} bytes follow the preamble`);
  }
  let text = '';
  try {
    text = new utf8.TextDecoder('utf-8', { fatal: true }).decode(blob.subarray(PREAMBLE, PREAMBLE + headerBytes));
  } catch {
    fail('header is not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  const parsed = DatasetHeader.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue.path.length > 0 ? issue.path.join('.') : '(header)';
    fail(`header field "${field}": ${issue.message}`);
  }
  const h = (parsed as { data: DatasetHeader }).data;

  const l = layout(headerBytes, h.n, h.xShape, h.yShape);
  const shapes = `n = ${h.n}, xShape ${fmtShape(h.xShape)}, yShape ${fmtShape(h.yShape)}`;
  if (h.xOffset !== l.xOffset) fail(`header field "xOffset" is ${h.xOffset}, expected ${l.xOffset} (the 8-aligned end of the header)`);
  if (h.xBytes !== l.xBytes) fail(`header field "xBytes" is ${h.xBytes}, but ${shapes} need ${l.xBytes}`);
  if (h.yOffset !== l.yOffset) fail(`header field "yOffset" is ${h.yOffset}, expected ${l.yOffset} (the 8-aligned end of x)`);
  if (h.yBytes !== l.yBytes) fail(`header field "yBytes" is ${h.yBytes}, but ${shapes} need ${l.yBytes}`);
  if (blob.length < l.total) fail(`truncated: ${blob.length} bytes, but the header (${shapes}) describes ${l.total}`);
  if (blob.length > l.total) fail(`${blob.length - l.total} trailing bytes after y (the header describes ${l.total} bytes)`);
  checkZero(blob, PREAMBLE + headerBytes, l.xOffset, fail, 'after the header');
  checkZero(blob, l.xOffset + l.xBytes, l.yOffset, fail, 'after x');

  const copy = opts.copy ?? false;
  const ds: Dataset = {
    name: h.name,
    x: readFloats(blob, l.xOffset, l.xBytes / 4, copy),
    y: readFloats(blob, l.yOffset, l.yBytes / 4, copy),
    n: h.n,
    xShape: h.xShape,
    yShape: h.yShape,
  };
  if (h.numClasses !== undefined) ds.numClasses = h.numClasses;
  if (h.featureNames !== undefined) ds.featureNames = h.featureNames;
  try {
    validateDataset(ds);
  } catch (e) {
    fail((e as Error).message);
  }
  return ds;
}

/** The dataset's identity: the SHA-256 (lower-case hex) of its blob. */
export function datasetHash(blob: Uint8Array, hash: HashFn = sha256Hex): string {
  return hash(blob);
}
