// bfloat16: the upper 16 bits of a float32 (sign, the same 8-bit exponent,
// 7 mantissa bits). `--grad-wire bf16` rounds every node of the reduction
// tree to it when the node is formed (leaf or sum), on the trainable part of
// the gradient vector, so the bits stay independent of who computed which
// node, and the wire carries those elements in 2 bytes.
//
// Rounding is to nearest, ties to even, on the float32's bits:
//   r = (u + 0x7fff + ((u >> 16) & 1)) & 0xffff0000
// which carries into the exponent when the mantissa overflows (the right
// result, up to Infinity for values past bf16's largest); NaN stays NaN
// (quiet: the carry could otherwise turn a NaN with low payload bits into
// Infinity).

/** The float32 bits of a Float32Array, viewed in place. */
function bitsOf(v: Float32Array): Uint32Array {
  return new Uint32Array(v.buffer, v.byteOffset, v.length);
}

/** Rounds v[from, to) to bfloat16 in place (round to nearest even). */
export function roundBf16(v: Float32Array, from = 0, to = v.length): void {
  const u = bitsOf(v);
  for (let i = from; i < to; i++) {
    const x = u[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x007fffff) !== 0) {
      u[i] = (x | 0x00400000) & 0xffff0000; // NOTE: a quiet NaN; rounding would carry a NaN into Infinity
      continue;
    }
    u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
}

/**
 * The rounding of a tree node's vector for a wire: bf16 on the vector's
 * elements below `limit` (the trainable elements: for a slice [from, to) of
 * the gradient vector, limit = numTrainable - from), nothing for f32.
 */
export function nodeRounding(wire: GradWire, limit: number): ((node: Float32Array) => void) | undefined {
  if (wire === 'f32') return undefined;
  return (node) => roundBf16(node, 0, Math.max(0, Math.min(node.length, limit)));
}

export type GradWire = 'f32' | 'bf16';
export const GRAD_WIRES = ['f32', 'bf16'] as const;

/** dst[i] = the upper half of src[i]'s bits (src already rounded: the low half is zero). */
export function packBf16(src: Float32Array, dst: Uint16Array): void {
  const u = bitsOf(src);
  for (let i = 0; i < u.length; i++) dst[i] = u[i] >>> 16;
}

/** dst[i] = the float32 whose upper half is src[i]. */
export function unpackBf16(src: Uint16Array, dst: Float32Array): void {
  const u = bitsOf(dst);
  for (let i = 0; i < src.length; i++) u[i] = (src[i] << 16) >>> 0;
}
