import { describe, expect, it } from 'vitest';
import { DATASET_MAGIC, datasetHash, decodeDataset, encodeDataset } from '../../src/data/binary.js';
import { type Dataset, toShared } from '../../src/data/dataset.js';
import { sha256Node } from '../../node/files/blobs.js';
import { DptrainError } from '../../src/errors.js';

function classification(): Dataset {
  const n = 7;
  const x = new Float32Array(n * 3);
  for (let i = 0; i < x.length; i++) x[i] = Math.fround(Math.sin(i) * 1e3) + (i === 4 ? 1e-40 : 0); // a subnormal too
  x[5] = -0;
  const y = Float32Array.from([0, 1, 2, 3, 0, 1, 2]);
  return { name: 'toy-cls', x, y, n, xShape: [3], yShape: [], numClasses: 4, featureNames: ['a', 'b', 'ü "c"'] };
}

function regression(): Dataset {
  const n = 3;
  return { name: 'toy-reg', x: Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).subarray(0, 6), y: Float32Array.from([0.5, -1, 2, 3, 1e30, -7]), n, xShape: [1, 2], yShape: [2] };
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(Float32Array.from(a).buffer));
}

function err(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DptrainError);
    expect((e as DptrainError).code).toBe('DPT_ERR_DATASET');
    return (e as Error).message;
  }
  throw new Error('expected DPT_ERR_DATASET');
}

/**
 * Rewrite the JSON header of a blob. keepLength: pad the new JSON with spaces
 * to the old length (when it fits) so the offsets stay valid.
 */
function withHeader(blob: Uint8Array, edit: (h: Record<string, unknown>) => void, keepLength = false): Uint8Array {
  const H = new DataView(blob.buffer, blob.byteOffset).getUint32(8, true);
  const h = JSON.parse(new TextDecoder().decode(blob.subarray(12, 12 + H))) as Record<string, unknown>;
  edit(h);
  let json = new TextEncoder().encode(JSON.stringify(h));
  if (keepLength && json.length <= H) {
    // pad with spaces to the original length so offsets stay put
    const padded = new Uint8Array(H).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(12 + json.length + (blob.length - 12 - H));
  out.set(blob.subarray(0, 12));
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(blob.subarray(12 + H), 12 + json.length);
  return out;
}

describe('dataset blob', () => {
  it('round-trips bit-exactly, with x and y 8-aligned and viewed in place', () => {
    for (const ds of [classification(), regression()]) {
      const blob = encodeDataset(ds);
      expect(new TextDecoder().decode(blob.subarray(0, 8))).toBe(DATASET_MAGIC);
      const back = decodeDataset(blob);
      expect(back.name).toBe(ds.name);
      expect(back.n).toBe(ds.n);
      expect(back.xShape).toEqual(ds.xShape);
      expect(back.yShape).toEqual(ds.yShape);
      expect(back.numClasses).toBe(ds.numClasses);
      expect(back.featureNames).toEqual(ds.featureNames);
      expect(bits(back.x)).toEqual(bits(ds.x));
      expect(bits(back.y)).toEqual(bits(ds.y));
      expect(back.x.buffer).toBe(blob.buffer); // no copy
      expect(back.x.byteOffset % 8).toBe(0);
      expect(back.y.byteOffset % 8).toBe(0);
      expect(encodeDataset(back)).toEqual(blob); // canonical
      const copied = decodeDataset(blob, { copy: true });
      expect(copied.x.buffer).not.toBe(blob.buffer);
      expect(bits(copied.x)).toEqual(bits(ds.x));
    }
  });

  it('the encoding is canonical: same data, same hash; any change, another hash', () => {
    const a = encodeDataset(classification());
    const b = encodeDataset(toShared(classification()));
    expect(datasetHash(a)).toBe(datasetHash(b));
    expect(datasetHash(a)).toBe(sha256Node(a));
    const c = classification();
    c.x[0] = Math.fround(c.x[0] + 1);
    expect(datasetHash(encodeDataset(c))).not.toBe(datasetHash(a));
  });

  it('decodes from an unaligned view and from a SharedArrayBuffer', () => {
    const blob = encodeDataset(classification());
    const holder = new Uint8Array(blob.length + 1);
    holder.set(blob, 1);
    const back = decodeDataset(holder.subarray(1));
    expect(bits(back.x)).toEqual(bits(classification().x));
    const shared = new Uint8Array(new SharedArrayBuffer(blob.length));
    shared.set(blob);
    const sb = decodeDataset(shared);
    expect(sb.x.buffer).toBe(shared.buffer);
    expect(bits(sb.y)).toEqual(bits(classification().y));
  });

  it('checks the expected hash', () => {
    const blob = encodeDataset(classification());
    const h = datasetHash(blob);
    expect(decodeDataset(blob, { expectedHash: h, hash: sha256Node }).n).toBe(7);
    expect(err(() => decodeDataset(blob, { expectedHash: '0'.repeat(64), source: 'w1' }))).toMatch(/^w1: SHA-256 is [0-9a-f]{64}, expected 0{64}/);
  });

  it('refuses a truncated blob', () => {
    const blob = encodeDataset(classification());
    expect(err(() => decodeDataset(blob.subarray(0, 5)))).toMatch(/truncated: 5 bytes, shorter than the 12-byte preamble/);
    expect(err(() => decodeDataset(blob.subarray(0, 40)))).toMatch(/truncated: the header is \d+ bytes but only 28 bytes follow/);
    expect(err(() => decodeDataset(blob.subarray(0, blob.length - 4), { source: 'data.dptdata' })))
      .toMatch(/^data\.dptdata: truncated: \d+ bytes, but the header \(n = 7, xShape \[3\], yShape \[\]\) describes \d+/);
    const longer = new Uint8Array(blob.length + 8);
    longer.set(blob);
    expect(err(() => decodeDataset(longer))).toMatch(/8 trailing bytes after y/);
  });

  it('refuses a bad magic', () => {
    const blob = encodeDataset(classification());
    blob[7] = 0x32; // "DPTDATA2"
    expect(err(() => decodeDataset(blob))).toMatch(/bad magic "DPTDATA2", expected "DPTDATA1"/);
    expect(err(() => decodeDataset(new TextEncoder().encode('PK\x03\x04 zip file...')))).toMatch(/bad magic "PK\\x03\\x04 zip"/);
  });

  it('refuses a header that is not JSON or fails the schema', () => {
    const blob = encodeDataset(classification());
    const broken = blob.slice();
    broken[12] = 0x7b + 1; // '|' instead of '{'
    expect(err(() => decodeDataset(broken))).toMatch(/header is not valid JSON/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.dtype = 'float64-le'; }, true)))).toMatch(/header field "dtype"/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.xShape = [3, -1]; }, true)))).toMatch(/header field "xShape\.1"/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.extra = 1; }, true)))).toMatch(/header field "\(header\)".*extra/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { delete h.name; }, true)))).toMatch(/header field "name"/);
  });

  it('refuses a header that lies about sizes', () => {
    const blob = encodeDataset(classification());
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.n = 8; }, true)))).toMatch(/header field "xBytes" is 84, but n = 8, xShape \[3\], yShape \[\] need 96/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.xShape = [4]; }, true)))).toMatch(/header field "xBytes" is 84, but n = 7, xShape \[4\]/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.yBytes = 32; }, true)))).toMatch(/header field "yBytes" is 32, but .* need 28/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.xOffset = (h.xOffset as number) + 8; }, true)))).toMatch(/header field "xOffset" is \d+, expected \d+/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.featureNames = ['a']; }, true)))).toMatch(/featureNames has 1 names, expected one per feature \(3\)/);
    // a header length beyond the blob
    const lying = blob.slice();
    new DataView(lying.buffer).setUint32(8, 1e6, true);
    expect(err(() => decodeDataset(lying))).toMatch(/truncated: the header is 1000000 bytes/);
    new DataView(lying.buffer).setUint32(8, 0xffffffff, true);
    expect(err(() => decodeDataset(lying))).toMatch(/header length 4294967295 exceeds the limit/);
  });

  it('refuses non-zero padding', () => {
    const ds = classification();
    const blob = encodeDataset(ds);
    const H = new DataView(blob.buffer).getUint32(8, true);
    if ((12 + H) % 8 !== 0) {
      const b = blob.slice();
      b[12 + H] = 1;
      expect(err(() => decodeDataset(b))).toMatch(/padding byte \d+ \(after the header\) is 1/);
    }
    const b2 = blob.slice();
    b2[b2.length - 7 * 4 - 1] = 9; // the 4 bytes between x (84 bytes) and y are padding
    expect(err(() => decodeDataset(b2))).toMatch(/padding byte \d+ \(after x\) is 9/);
  });

  it('refuses bad labels and values', () => {
    const blob = encodeDataset(classification());
    const yAt = blob.length - 7 * 4;
    const put = (i: number, v: number): Uint8Array => {
      const b = blob.slice();
      new DataView(b.buffer).setFloat32(yAt + 4 * i, v, true);
      return b;
    };
    expect(err(() => decodeDataset(put(2, 4)))).toMatch(/label of sample 2 is 4, expected an integer class id in 0\.\.3/);
    expect(err(() => decodeDataset(put(2, -1)))).toMatch(/label of sample 2 is -1/);
    expect(err(() => decodeDataset(put(6, NaN)))).toMatch(/label of sample 6 is NaN/);
    expect(err(() => decodeDataset(put(0, 1.5)))).toMatch(/label of sample 0 is 1\.5/);
    const bx = blob.slice();
    new DataView(bx.buffer).setFloat32(yAt - 4 - 84 + 4 * 4, NaN, true); // x[4]
    expect(err(() => decodeDataset(bx))).toMatch(/x of sample 1, feature 1 is NaN/);
    expect(err(() => decodeDataset(withHeader(blob, (h) => { h.numClasses = 3; }, true)))).toMatch(/label of sample 3 is 3, expected an integer class id in 0\.\.2/);
  });

  it('refuses to encode an invalid dataset', () => {
    const ds = classification();
    ds.y[0] = 9;
    expect(err(() => encodeDataset(ds))).toMatch(/label of sample 0 is 9/);
  });
});
