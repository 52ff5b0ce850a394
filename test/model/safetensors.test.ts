// The safetensors container: encoding layout and every validation the decoder does.
import { describe, expect, test } from 'vitest';
import { DptrainError } from '../../src/errors.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';

/** A raw file from a header object and a data section, padded like ours. */
function rawFile(header: unknown, data: Uint8Array, pad = true): Uint8Array {
  let json = new TextEncoder().encode(JSON.stringify(header));
  if (pad) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function expectModelFileError(fn: () => unknown, ...fragments: string[]): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(DptrainError);
  expect((error as DptrainError).code).toBe('DPT_ERR_MODEL_FILE');
  for (const f of fragments) expect((error as Error).message).toContain(f);
}

const a = { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -0]) };
const b = { shape: [], data: new Float32Array([Number.NaN]) };
const c = { shape: [0, 4], data: new Float32Array(0) };

describe('encodeSafetensors', () => {
  test('lays out an 8-byte length, a space-padded JSON header and little-endian data', () => {
    const bytes = encodeSafetensors([['a', a], ['b', b]], { note: 'hi' });
    const view = new DataView(bytes.buffer);
    const n = view.getUint32(0, true);
    expect(view.getUint32(4, true)).toBe(0);
    expect(n % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text.trimEnd().length).toBeLessThanOrEqual(n);
    expect(JSON.parse(text)).toEqual({
      __metadata__: { note: 'hi' },
      a: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
      b: { dtype: 'F32', shape: [], data_offsets: [24, 28] },
    });
    expect(bytes.length).toBe(8 + n + 28);
    expect(view.getFloat32(8 + n + 4 * 4, true)).toBe(5);
  });

  test('round trips bit for bit, scalars, empty tensors, NaN and -0 included', () => {
    const out = decodeSafetensors(encodeSafetensors([['a', a], ['b', b], ['c', c]], { k: 'v' }));
    expect([...out.tensors.keys()]).toEqual(['a', 'b', 'c']);
    expect(out.metadata).toEqual({ k: 'v' });
    expect(out.tensors.get('a')!.shape).toEqual([2, 3]);
    expect(new Uint8Array(out.tensors.get('a')!.data.buffer)).toEqual(new Uint8Array(a.data.buffer));
    expect(Number.isNaN(out.tensors.get('b')!.data[0])).toBe(true);
    expect(out.tensors.get('c')!.data.length).toBe(0);
  });

  test('reads an unpadded header at an unaligned data offset', () => {
    const header = { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    const data = new Uint8Array(new Float32Array([1.5, -2.25]).buffer);
    const out = decodeSafetensors(rawFile(header, data, false));
    expect([...out.tensors.get('x')!.data]).toEqual([1.5, -2.25]);
    expect(out.metadata).toEqual({});
  });

  test('int64 tensors (PyTorch\'s num_batches_tracked): 8 bytes each, little-endian, read back apart from the floats', () => {
    const count = { shape: [], data: BigInt64Array.of(1234567890123n) };
    const bytes = encodeSafetensors([['a', a], ['n', count], ['b', b]]);
    const n = new DataView(bytes.buffer).getUint32(0, true);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, unknown>;
    expect(header.n).toEqual({ dtype: 'I64', shape: [], data_offsets: [24, 32] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [], data_offsets: [32, 36] });
    expect(new DataView(bytes.buffer).getBigInt64(8 + n + 24, true)).toBe(1234567890123n);
    const out = decodeSafetensors(bytes);
    expect([...out.tensors.keys()]).toEqual(['a', 'b']);
    expect([...out.ints.keys()]).toEqual(['n']);
    expect(out.ints.get('n')!.data[0]).toBe(1234567890123n);
    expect(Number.isNaN(out.tensors.get('b')!.data[0])).toBe(true);
  });

  test('refuses a shape that does not match the data', () => {
    expect(() => encodeSafetensors([['a', { shape: [4], data: new Float32Array(3) }]])).toThrow(/"a" has shape \[4\]/);
    expect(() => encodeSafetensors([['__metadata__', b]])).toThrow(/invalid tensor name/);
  });
});

describe('decodeSafetensors refuses', () => {
  const good = encodeSafetensors([['first', a], ['second', { shape: [3], data: new Float32Array([7, 8, 9]) }]]);

  test('a file shorter than the length field', () => {
    expectModelFileError(() => decodeSafetensors(new Uint8Array(5)), 'too short');
  });

  test('a header length past the end of the file', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(0, 1_000_000, true);
    expectModelFileError(() => decodeSafetensors(bad), 'header length 1000000', 'past the end');
  });

  test('a header length above 2^32 or the 100 MB limit', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(4, 1, true);
    expectModelFileError(() => decodeSafetensors(bad), 'exceeds');
  });

  test('a header length that cuts the JSON short', () => {
    const bad = good.slice();
    const view = new DataView(bad.buffer);
    view.setUint32(0, view.getUint32(0, true) - 16, true);
    expectModelFileError(() => decodeSafetensors(bad), 'not valid JSON');
  });

  test('a truncated file, naming the tensor that runs past the end', () => {
    expectModelFileError(() => decodeSafetensors(good.subarray(0, good.length - 3)), 'tensor "second"', 'run past');
  });

  test('trailing bytes after the last tensor', () => {
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expectModelFileError(() => decodeSafetensors(longer), 'trailing');
  });

  test('a dtype other than F32 and I64', () => {
    const header = { h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } };
    expectModelFileError(() => decodeSafetensors(rawFile(header, new Uint8Array(4))), 'tensor "h"', 'F16', 'only F32');
    const short = { i: { dtype: 'I64', shape: [2], data_offsets: [0, 8] } };
    expectModelFileError(() => decodeSafetensors(rawFile(short, new Uint8Array(8))), 'tensor "i"', '[2] needs 16 bytes of I64');
  });

  test('a shape whose size does not match the byte range', () => {
    const header = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 12] } };
    expectModelFileError(() => decodeSafetensors(rawFile(header, new Uint8Array(12))), 'tensor "w"', '[2, 2] needs 16 bytes', 'span 12');
  });

  test('a malformed shape or offsets', () => {
    const badShape = { w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 0] } };
    expectModelFileError(() => decodeSafetensors(rawFile(badShape, new Uint8Array(0))), 'tensor "w"', 'shape');
    const badOffsets = { w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } };
    expectModelFileError(() => decodeSafetensors(rawFile(badOffsets, new Uint8Array(4))), 'tensor "w"', 'data_offsets');
  });

  test('overlapping tensors', () => {
    const header = {
      p: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      q: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectModelFileError(() => decodeSafetensors(rawFile(header, new Uint8Array(12))), 'tensor "q"', 'overlap');
  });

  test('a gap between tensors', () => {
    const header = {
      p: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      q: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    expectModelFileError(() => decodeSafetensors(rawFile(header, new Uint8Array(12))), 'tensor "q"', 'gap');
  });

  test('a header that is not an object, or metadata that is not strings', () => {
    expectModelFileError(() => decodeSafetensors(rawFile([1, 2], new Uint8Array(0))), 'start with "{"');
    expectModelFileError(() => decodeSafetensors(rawFile({ __metadata__: { n: 3 } }, new Uint8Array(0))), '__metadata__.n');
    expectModelFileError(() => decodeSafetensors(rawFile({ t: 5 }, new Uint8Array(0))), 'tensor "t"');
    expectModelFileError(
      () => decodeSafetensors(rawFile({ t: { dtype: 'F32', shape: [], data_offsets: [0, 4], extra: 1 } }, new Uint8Array(4))),
      'tensor "t"', 'unknown header field "extra"',
    );
  });
});
