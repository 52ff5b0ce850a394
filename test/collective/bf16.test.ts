import { describe, expect, it } from 'vitest';
import { nodeRounding, packBf16, roundBf16, unpackBf16 } from '../../src/reduce/bf16.js';
import { uniform } from '../../src/random/counter.js';

/** The float32 of bits u. */
function f32(u: number): number {
  return new Float32Array(new Uint32Array([u >>> 0]).buffer)[0];
}

/** Round to nearest even, by the definition: the nearer of the two bf16 neighbours, the even one on a tie. */
function reference(u: number): number {
  const x = f32(u);
  if (Number.isNaN(x)) return NaN;
  const lo = (u & 0xffff0000) >>> 0; // toward zero
  const hi = (lo + 0x10000) >>> 0; // away from zero (may be Infinity)
  const dl = Math.abs(x - f32(lo));
  // IEEE: past the largest finite value the next one up counts as 2^128 (so the halfway point rounds to Infinity).
  const hiValue = Number.isFinite(f32(hi)) ? f32(hi) : Math.sign(x) * 2 ** 128;
  const dh = Math.abs(hiValue - x);
  if (dl < dh) return f32(lo);
  if (dh < dl) return f32(hi);
  return (lo & 0x10000) === 0 ? f32(lo) : f32(hi);
}

describe('bfloat16 rounding', () => {
  it('rounds to the nearest bf16 value, ties to even, for random bit patterns and the special values', () => {
    const n = 200_000;
    const bits = new Uint32Array(n + 12);
    for (let i = 0; i < n; i++) bits[i] = Math.floor(uniform(21, i) * 2 ** 32) >>> 0;
    // Ties, a carry into the exponent, the largest finite value, infinities, zeros, subnormals, NaNs.
    bits.set([0x3f808000, 0x3f818000, 0x3fffffff, 0x7f7fffff, 0x7f800000, 0xff800000, 0, 0x80000000, 0x00018000, 0x7fc00000, 0x7f800001, 0xffffffff], n);
    const v = new Float32Array(bits.buffer.slice(0));
    roundBf16(v);
    const out = new Uint32Array(v.buffer);
    for (let i = 0; i < bits.length; i++) {
      const want = reference(bits[i]);
      if (Number.isNaN(want)) {
        expect(Number.isNaN(v[i])).toBe(true);
      } else if (v[i] !== want || (want === 0 && Object.is(v[i], -0) !== Object.is(want, -0))) {
        throw new Error(`bits 0x${bits[i].toString(16)}: got ${v[i]}, want ${want}`);
      }
      expect(out[i] & 0xffff).toBe(0);
    }
    expect(v[n + 3]).toBe(Infinity); // 0x7f7fffff rounds past bf16's largest finite value
  });

  it('is idempotent and rounds only the range asked for', () => {
    const v = Float32Array.from({ length: 64 }, (_, i) => (uniform(3, i) - 0.5) * 1e3);
    const once = v.slice();
    roundBf16(once, 10, 50);
    const twice = once.slice();
    roundBf16(twice, 10, 50);
    expect(twice).toEqual(once);
    expect(once.subarray(0, 10)).toEqual(v.subarray(0, 10));
    expect(once.subarray(50)).toEqual(v.subarray(50));
  });

  it('rounds only the trainable elements of a slice (nodeRounding limit), nothing with f32', () => {
    expect(nodeRounding('f32', 10)).toBeUndefined();
    const v = Float32Array.from({ length: 32 }, (_, i) => 1 + i / 1000 + 1e-6);
    const r = v.slice();
    nodeRounding('bf16', 20)!(r);
    for (let i = 0; i < 32; i++) expect(r[i] === v[i]).toBe(i >= 20);
    const none = v.slice();
    nodeRounding('bf16', -5)!(none);
    expect(none).toEqual(v);
  });

  it('packs rounded values into 2 bytes and back without loss', () => {
    const v = Float32Array.from({ length: 1000 }, (_, i) => (uniform(9, i) - 0.5) * 10 ** ((i % 20) - 10));
    roundBf16(v);
    const packed = new Uint16Array(v.length);
    packBf16(v, packed);
    const back = new Float32Array(v.length);
    unpackBf16(packed, back);
    expect(Buffer.from(back.buffer).equals(Buffer.from(v.buffer))).toBe(true);
  });
});
