import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/data/sha256.js';
import { sha256Node } from '../../node/files/blobs.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('sha256 (@noble/hashes)', () => {
  it('matches the FIPS 180-4 known vectors', () => {
    expect(sha256Hex(ascii(''))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(sha256Hex(ascii('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex(ascii('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))
      .toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
    expect(sha256Hex(ascii('a'.repeat(1_000_000)))).toBe('cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
  });

  it('agrees with node:crypto on a 1 MB buffer and at every padding boundary', () => {
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
    expect(sha256Hex(big)).toBe(createHash('sha256').update(big).digest('hex'));
    expect(sha256Node(big)).toBe(sha256Hex(big));
    for (let len = 0; len <= 200; len++) {
      const b = big.subarray(7, 7 + len); // also an unaligned view
      expect(sha256Hex(b), `length ${len}`).toBe(sha256Node(b));
    }
  });

  it('hashes bytes on a SharedArrayBuffer', () => {
    const sab = new Uint8Array(new SharedArrayBuffer(3));
    sab.set([0x61, 0x62, 0x63]);
    expect(sha256Hex(sab)).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
