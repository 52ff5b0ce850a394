// The collective's messages through the one decode(): round trips (plain
// and bf16-packed payloads, aligned or not), and every kind of bad peer
// frame refused with DPT_ERR_MESSAGE naming what is wrong.
import { describe, expect, it } from 'vitest';
import { decode, decodeFromPeer, encode, type FrameLimits } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../../src/protocol/messages.js';
import { packedBytes } from '../../src/protocol/packed.js';
import { roundBf16 } from '../../src/reduce/bf16.js';
import { rawFrame } from '../helpers/frames.js';

const LIMITS: FrameLimits = { maxFrameBytes: 1 << 20, maxPayloadFloats: { part: 4000, reduced: 1000, commit: 1000, replica: 2000 } };
const H = 'b'.repeat(64);

function floats(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(seed + i * 1.7) * 10 ** ((i % 7) - 3));
}

/** Vectors whose first `half` elements are bf16 values (as a bf16 tree node is). */
function packedVectors(vectors: number, length: number, half: number, seed: number): Float32Array {
  const v = floats(vectors * length, seed);
  for (let j = 0; j < vectors; j++) roundBf16(v, j * length, j * length + half);
  return v;
}

const contributors = [
  { id: 'p1', address: '10.0.0.1:7071', start: 0, end: 4 },
  { id: 'coordinator', address: '', start: 4, end: 6 },
  { id: 'p2', address: '10.0.0.2:7071', start: 6, end: 8 },
];

const samples: [Message, 'member' | 'conductor' | 'peer'][] = [
  [{ type: 'peer-hello', protocol: PROTOCOL_VERSION, token: 't', runId: 'r1', memberId: 'p1' }, 'peer'],
  [{ type: 'peer-welcome', memberId: 'p2' }, 'peer'],
  [{ type: 'part', step: 5, attempt: 1, slice: 1, blocks: [{ level: 2, index: 0 }], pack: { vectors: 1, length: 37, half: 0 }, sums: floats(37, 1) }, 'peer'],
  [{ type: 'part', step: 5, attempt: 2, slice: 0, blocks: [{ level: 0, index: 5 }, { level: 1, index: 3 }], pack: { vectors: 2, length: 37, half: 21 }, sums: packedVectors(2, 37, 21, 2) }, 'peer'],
  [{ type: 'part', step: 5, attempt: 2, slice: 0, blocks: [{ level: 0, index: 5 }], pack: { vectors: 1, length: 33, half: 33 }, sums: packedVectors(1, 33, 33, 3) }, 'peer'],
  [{ type: 'reduced', step: 5, attempt: 1, slice: 2, pack: { vectors: 1, length: 50, half: 17 }, sums: packedVectors(1, 50, 17, 4) }, 'peer'],
  [{ type: 'bye', code: 'leaving', reason: 'SIGTERM' }, 'peer'],
  [{ type: 'refuse', code: 'token', reason: 'wrong token', retry: false }, 'peer'],
  [{ type: 'computed', step: 5, attempt: 1, computeMs: 3.5 }, 'member'],
  [{ type: 'reduced', step: 5, attempt: 1, slice: 0, pack: { vectors: 1, length: 9, half: 0 }, sums: floats(9, 8) }, 'member'],
  [{ type: 'peer-fault', step: 5, attempt: 1, peer: 'p2', reason: 'sent a frame that is not a message' }, 'member'],
  [{ type: 'need', step: 5, attempt: 1, slices: [0, 2] }, 'member'],
  [{ type: 'replica-hash', step: 100, hash: H }, 'member'],
  [{ type: 'reduced', step: 5, attempt: 1, slice: 1, pack: { vectors: 1, length: 9, half: 9 }, sums: packedVectors(1, 9, 9, 9) }, 'conductor'],
];

describe('the collective\'s messages in the codec', () => {
  it('round-trip through decode(), packed payloads in the bytes the pack says', () => {
    for (const [m, sender] of samples) {
      const bytes = encode(m);
      expect(decode(bytes, sender, LIMITS), m.type).toEqual(m);
      if ('pack' in m && m.pack !== undefined) {
        const head = new DataView(bytes.buffer).getUint32(0, true);
        expect(bytes.length - ((4 + head + 3) & ~3)).toBe(packedBytes(m.pack));
      }
      // Unaligned, as a socket may deliver it.
      const shifted = new Uint8Array(bytes.length + 1).subarray(1);
      shifted.set(bytes);
      expect(decode(shifted, sender, LIMITS)).toEqual(m);
    }
  });

  it('a bf16 part travels in about half the bytes of a float32 one', () => {
    const f32 = encode({ type: 'part', step: 1, attempt: 1, slice: 0, blocks: [{ level: 0, index: 0 }], pack: { vectors: 1, length: 1000, half: 0 }, sums: floats(1000, 5) });
    const b16 = encode({ type: 'part', step: 1, attempt: 1, slice: 0, blocks: [{ level: 0, index: 0 }], pack: { vectors: 1, length: 1000, half: 1000 }, sums: packedVectors(1, 1000, 1000, 5) });
    expect(b16.length).toBeLessThan(f32.length / 2 + 100);
  });

  it('takes the collective\'s messages on a worker\'s connection only once it is a member', () => {
    expect(() => decode(encode({ type: 'computed', step: 5, attempt: 1, computeMs: 1 }), 'worker', LIMITS)).toThrow(/a worker does not send "computed" messages/);
    expect(() => decode(encode({ type: 'commit', step: 9, attempt: 1, hash: H, lr: 0.05, sum: new Float32Array(0) }), 'coordinator', LIMITS)).toThrow(/a coordinator does not send "commit"/);
    expect(() => decode(encode({ type: 'part', step: 1, attempt: 1, slice: 0, blocks: [{ level: 0, index: 0 }], pack: { vectors: 1, length: 1, half: 0 }, sums: floats(1, 1) }), 'member', LIMITS)).toThrow(/a member does not send "part" messages/);
  });

  it('checks an order\'s contributors against its micro-shards', () => {
    const order: Extract<Message, { type: 'order' }> = {
      type: 'order', step: 3, attempt: 1, version: 4, k: 8, rows: 64, contributors, you: 2, indices: [1, 2], wire: 'f32', checkReplica: false,
    };
    expect(decode(encode(order), 'conductor', LIMITS)).toEqual(order);
    const gap = { ...order, you: 0, contributors: [contributors[0], { ...contributors[2], start: 5 }] };
    expect(() => decode(encode(gap), 'conductor', LIMITS)).toThrow(/contributors\[1\]: micro-shards \[5, 8\) do not follow \[0, 4\)/);
    expect(() => decode(encode({ ...order, you: 3 }), 'conductor', LIMITS)).toThrow(/you: index 3 of 3 contributors/);
    expect(() => decode(encode({ ...order, k: 9 }), 'conductor', LIMITS)).toThrow(/cover \[0, 8\), not \[0, 9\)/);
  });

  it('refuses every kind of bad peer frame, naming what is wrong', () => {
    const part = { type: 'part', step: 5, attempt: 1, slice: 1, blocks: [{ level: 2, index: 0 }] };
    const frame = rawFrame;
    const bad: [string, Uint8Array, RegExp][] = [
      ['random bytes', Uint8Array.from([7, 7, 7, 7, 7, 7, 7, 7, 7]), /header length \d+ exceeds|truncated/],
      ['an order from a peer', encode({ type: 'order', step: 3, attempt: 1, version: 4, k: 8, rows: 64, contributors, you: 0, indices: [], wire: 'f32', checkReplica: false }), /a peer does not send "order" messages/],
      ['a task from a peer', frame({ type: 'task' }), /a peer does not send "task" messages/],
      ['half past length', frame({ ...part, pack: { vectors: 1, length: 4, half: 5 } }, new Uint8Array(16)), /part\.pack: half: half must not exceed length/],
      ['pack against blocks', frame({ ...part, pack: { vectors: 2, length: 4, half: 0 } }, new Uint8Array(32)), /pack\.vectors must equal the number of blocks/],
      ['payload shorter than the pack', frame({ ...part, pack: { vectors: 1, length: 10, half: 4 } }, new Uint8Array(28)), /payload of 28 bytes, the pack \(1 x 10, 4 in bf16\) needs 32/],
      ['payload over the cap', frame({ ...part, pack: { vectors: 1, length: 4001, half: 0 } }, new Uint8Array(4 * 4001)), /4001 floats exceed the limit of 4000/],
      ['no pack', frame({ ...part }, new Uint8Array(16)), /pack: /],
      ['a reduced slice of two vectors', frame({ type: 'reduced', step: 1, attempt: 1, slice: 0, pack: { vectors: 2, length: 2, half: 0 } }, new Uint8Array(16)), /a reduced slice is one vector/],
      ['attempt 0', frame({ ...part, attempt: 0, pack: { vectors: 1, length: 1, half: 0 } }, new Uint8Array(4)), /attempt/],
      ['oversize', new Uint8Array((1 << 20) + 1), /exceeds the limit/],
      ['a hello with a huge token', frame({ type: 'peer-hello', protocol: 1, token: 'x'.repeat(2000), runId: 'r', memberId: 'm' }), /token/],
    ];
    for (const [what, bytes, message] of bad) {
      let err: unknown;
      try {
        decodeFromPeer(bytes, LIMITS);
      } catch (e) {
        err = e;
      }
      expect(err, what).toMatchObject({ code: 'DPT_ERR_MESSAGE' });
      expect((err as Error).message, what).toMatch(message);
      expect((err as Error).message, what).toMatch(/^message from the peer: /);
    }
  });

  it('carries a commit with or without the reduced sum, and a replica', () => {
    const plain = { type: 'commit', step: 9, attempt: 1, hash: H, lr: 0.05, sum: new Float32Array(0) } as const;
    expect(decode(encode(plain), 'conductor', LIMITS)).toEqual(plain);
    const carried = { ...plain, pack: { vectors: 1, length: 40, half: 30 }, sum: packedVectors(1, 40, 30, 6) };
    expect(decode(encode(carried), 'conductor', LIMITS)).toEqual(carried);
    const replica = { type: 'replica', version: 3, step: 2, optimizer: { lr: 0.1, momentum: 0.9 }, updates: 2, state: floats(64, 7) } as const;
    expect(decode(encode(replica), 'conductor', LIMITS)).toEqual(replica);
  });
});
