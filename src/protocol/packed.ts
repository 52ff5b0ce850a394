// Packed float payloads (`--grad-wire bf16`): a message carrying `vectors`
// vectors of `length` floats whose first `half` elements are bfloat16
// values (the trainable part of a gradient slice, rounded where the tree
// node was formed) travels as
//
//   vectors x half   uint16 LE   the bf16 heads, vector after vector
//   zeros            up to a multiple of 4 bytes
//   vectors x (length - half)   float32 LE   the tails, vector after vector
//
// With half = 0 it is the plain float32 payload. The receiver gets a
// Float32Array of vectors x length floats (a copy when half > 0).
import { packBf16, unpackBf16 } from '../reduce/bf16.js';

export interface Pack {
  readonly vectors: number;
  readonly length: number;
  readonly half: number;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Bytes of a packed payload. */
export function packedBytes(p: Pack): number {
  return align4(2 * p.vectors * p.half) + 4 * p.vectors * (p.length - p.half);
}

/** Writes floats (vectors x length, heads already bf16 values) packed into out (packedBytes(p) bytes at a 4-aligned offset). */
export function packFloats(floats: Float32Array, p: Pack, out: Uint8Array): void {
  if (floats.length !== p.vectors * p.length) throw new RangeError(`${floats.length} floats, the pack says ${p.vectors} x ${p.length}`);
  const heads = new Uint16Array(out.buffer, out.byteOffset, p.vectors * p.half);
  const tailAt = align4(2 * p.vectors * p.half);
  const tails = new Float32Array(out.buffer, out.byteOffset + tailAt, p.vectors * (p.length - p.half));
  const tail = p.length - p.half;
  for (let v = 0; v < p.vectors; v++) {
    const vec = floats.subarray(v * p.length, (v + 1) * p.length);
    if (p.half > 0) packBf16(vec.subarray(0, p.half), heads.subarray(v * p.half, (v + 1) * p.half));
    tails.set(vec.subarray(p.half), v * tail);
  }
}

/** The floats of a packed payload at bytes[0, packedBytes(p)) (bytes 4-aligned in its buffer). */
export function unpackFloats(bytes: Uint8Array, p: Pack): Float32Array {
  const out = new Float32Array(p.vectors * p.length);
  const heads = new Uint16Array(bytes.buffer, bytes.byteOffset, p.vectors * p.half);
  const tails = new Float32Array(bytes.buffer, bytes.byteOffset + align4(2 * p.vectors * p.half), p.vectors * (p.length - p.half));
  const tail = p.length - p.half;
  for (let v = 0; v < p.vectors; v++) {
    const vec = out.subarray(v * p.length, (v + 1) * p.length);
    if (p.half > 0) unpackBf16(heads.subarray(v * p.half, (v + 1) * p.half), vec.subarray(0, p.half));
    vec.set(tails.subarray(v * tail, (v + 1) * tail), p.half);
  }
  return out;
}
