// The safetensors container (https://github.com/huggingface/safetensors),
// float32 tensors, and int64 ones for the counters PyTorch keeps as int64
// (BatchNorm's num_batches_tracked in the PyTorch export):
//
//   [ u64 little-endian N ][ N bytes of JSON header ][ data ]
//
// The header maps each tensor name to { dtype: "F32" | "I64", shape: [...],
// data_offsets: [begin, end] } (byte offsets into the data section), plus an
// optional "__metadata__" object of string -> string. We pad the header with
// spaces to a multiple of 8 so the data section is 8-byte aligned in the file.
//
// The decoder checks everything the reference implementation checks and
// names the tensor or field at fault: the header length fits the file, the
// header is a JSON object, every dtype is F32 or I64, every shape is a list of
// non-negative integers whose product times 4 (8) is the tensor's byte length,
// and the tensors tile the data section exactly (in range, no overlap, no
// gaps, nothing after the last one). Every failure is DPT_ERR_MODEL_FILE.
//
// Pure TypeScript: Uint8Array, DataView, TextEncoder/TextDecoder only.
import { dptError, fmtShape } from '../errors.js';

export interface F32Tensor {
  /** Row-major shape; [] is a scalar (one element). */
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** An int64 tensor (PyTorch's num_batches_tracked: a scalar count). */
export interface I64Tensor {
  readonly shape: readonly number[];
  readonly data: BigInt64Array;
}

export interface DecodedSafetensors {
  /** The F32 tensors in file order (ascending data offset). Each data array is a fresh copy. */
  readonly tensors: Map<string, F32Tensor>;
  /** The I64 tensors, likewise (none in a native model file). */
  readonly ints: Map<string, I64Tensor>;
  /** The "__metadata__" object, {} when absent. */
  readonly metadata: Record<string, string>;
}

/** The reference implementation refuses headers above 100 MB; so do we. */
export const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// NOTE: safetensors data is little-endian. Every engine dptrain runs on is
// little-endian, where a Float32Array's bytes can be copied as they are; the
// DataView path keeps a big-endian host correct.
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function fail(message: string): never {
  throw dptError('DPT_ERR_MODEL_FILE', `safetensors: ${message}`);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * Encodes tensors (in iteration order) and string metadata as a safetensors
 * file. Throws RangeError for a name that is empty or "__metadata__", or a
 * shape that does not match its data length.
 */
export function encodeSafetensors(
  tensors: Iterable<readonly [string, F32Tensor | I64Tensor]>,
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  const metaKeys = Object.keys(metadata);
  if (metaKeys.length > 0) {
    const meta: Record<string, string> = {};
    for (const k of metaKeys) {
      if (typeof metadata[k] !== 'string') throw new RangeError(`safetensors metadata "${k}" must be a string`);
      meta[k] = metadata[k];
    }
    header[METADATA_KEY] = meta;
  }
  const list: (F32Tensor | I64Tensor)[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '' || name === METADATA_KEY) throw new RangeError(`safetensors: invalid tensor name "${name}"`);
    if (Object.prototype.hasOwnProperty.call(header, name)) throw new RangeError(`safetensors: duplicate tensor name "${name}"`);
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new RangeError(`safetensors: tensor "${name}" has an invalid shape ${fmtShape(t.shape)}`);
    }
    const n = elementCount(t.shape);
    if (n !== t.data.length) {
      throw new RangeError(`safetensors: tensor "${name}" has shape ${fmtShape(t.shape)} (${n} elements) but ${t.data.length} values`);
    }
    const bytes = t.data.BYTES_PER_ELEMENT * n;
    header[name] = { dtype: isI64(t) ? 'I64' : 'F32', shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    list.push(t);
    offset += bytes;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, padded, true);
  view.setUint32(4, Math.floor(padded / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);

  let pos = 8 + padded;
  for (const t of list) {
    if (LITTLE_ENDIAN) {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else if (isI64(t)) {
      for (let i = 0; i < t.data.length; i++) view.setBigInt64(pos + 8 * i, t.data[i], true);
    } else {
      for (let i = 0; i < t.data.length; i++) view.setFloat32(pos + 4 * i, t.data[i], true);
    }
    pos += t.data.byteLength;
  }
  return out;
}

function isI64(t: F32Tensor | I64Tensor): t is I64Tensor {
  return t.data instanceof BigInt64Array;
}

interface RawEntry {
  name: string;
  dtype: 'F32' | 'I64';
  shape: number[];
  begin: number;
  end: number;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function checkEntry(name: string, value: unknown): RawEntry {
  const where = `tensor "${name}"`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(`${where}: header entry must be an object`);
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) {
    if (key !== 'dtype' && key !== 'shape' && key !== 'data_offsets') fail(`${where}: unknown header field "${key}"`);
  }
  if (v.dtype !== 'F32' && v.dtype !== 'I64') {
    fail(`${where}: dtype ${JSON.stringify(v.dtype)} is not supported; only F32 (and I64) tensors can be read`);
  }
  if (!Array.isArray(v.shape) || !v.shape.every(isNonNegInt)) {
    fail(`${where}: shape must be a list of non-negative integers, got ${JSON.stringify(v.shape)}`);
  }
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt) || offs[0] > offs[1]) {
    fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offs)}`);
  }
  const shape = v.shape;
  const [begin, end] = offs;
  const dtype = v.dtype;
  const expected = (dtype === 'I64' ? 8 : 4) * elementCount(shape);
  if (end - begin !== expected) {
    fail(`${where}: shape ${fmtShape(shape)} needs ${expected} bytes of ${dtype} but data_offsets [${begin}, ${end}] span ${end - begin}`);
  }
  return { name, dtype, shape, begin, end };
}

/** Decodes and validates a safetensors file of F32 (and I64) tensors. */
export function decodeSafetensors(bytes: Uint8Array): DecodedSafetensors {
  if (bytes.length < 8) fail(`file is ${bytes.length} bytes, too short for the 8-byte header length (truncated?)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const headerLen = hi * 2 ** 32 + lo;
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt header length?)`);
  if (headerLen < 2) fail(`header length ${headerLen} is too small for a JSON object`);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} runs past the end of the ${bytes.length}-byte file (truncated or corrupt header length)`);
  }

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch {
    fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') fail('header must start with "{" (corrupt header length?)');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('header must be a JSON object');

  const metadata: Record<string, string> = {};
  const entries: RawEntry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(value as Record<string, unknown>)) {
        if (typeof s !== 'string') fail(`__metadata__.${k} must be a string, got ${JSON.stringify(s)}`);
        metadata[k] = s;
      }
      continue;
    }
    entries.push(checkEntry(name, value));
  }

  // The tensors must tile the data section: sorted by offset, each begins
  // where the previous one ended, and the last ends at the end of the file.
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.end > dataLen) {
      fail(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] run past the ${dataLen}-byte data section (truncated file?)`);
    }
    if (e.begin < expected) fail(`tensor "${e.name}": data_offsets [${e.begin}, ${e.end}] overlap the previous tensor's bytes (which end at ${expected})`);
    if (e.begin > expected) fail(`tensor "${e.name}": data_offsets begin at ${e.begin}, leaving a gap after byte ${expected}`);
    expected = e.end;
  }
  if (expected !== dataLen) fail(`the data section is ${dataLen} bytes but the tensors cover ${expected} (trailing bytes)`);

  const tensors = new Map<string, F32Tensor>();
  const ints = new Map<string, I64Tensor>();
  for (const e of entries) {
    if (e.dtype === 'I64') {
      const data = new BigInt64Array((e.end - e.begin) / 8);
      for (let i = 0; i < data.length; i++) data[i] = view.getBigInt64(dataStart + e.begin + 8 * i, true);
      ints.set(e.name, { shape: e.shape, data });
      continue;
    }
    const n = (e.end - e.begin) / 4;
    const data = new Float32Array(n);
    const at = dataStart + e.begin;
    if (LITTLE_ENDIAN) {
      new Uint8Array(data.buffer).set(bytes.subarray(at, at + 4 * n));
    } else {
      for (let i = 0; i < n; i++) data[i] = view.getFloat32(at + 4 * i, true);
    }
    tensors.set(e.name, { shape: e.shape, data });
  }
  return { tensors, ints, metadata };
}
