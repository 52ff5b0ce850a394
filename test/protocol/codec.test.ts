// The wire format: every message round-trips, the float payload arrives as
// a Float32Array in place (or copied when the frame is unaligned), and every
// kind of bad frame is refused by the one decode() with DPT_ERR_MESSAGE
// naming what is wrong.
import { describe, expect, it } from 'vitest';
import { decode, decodeFromCoordinator, decodeFromWorker, encode, type FrameLimits } from '../../src/protocol/codec.js';
import { PROTOCOL_VERSION, type Message } from '../../src/protocol/messages.js';
import { canonicalJson, hashJson } from '../../src/protocol/content-hash.js';
import { rawFrame } from '../helpers/frames.js';

const LIMITS: FrameLimits = { maxFrameBytes: 1 << 20, maxPayloadFloats: { weights: 1000, result: 3000 } };
const H = 'a'.repeat(64);

const samples: Message[] = [
  { type: 'hello', protocol: PROTOCOL_VERSION, token: 's3cret', kind: 'process', kernels: 'wasm', threads: 2, host: 'box', software: 'dptrain 0.1.0' },
  {
    type: 'welcome', protocol: PROTOCOL_VERSION, workerId: 'p1', runId: 'r1', kernels: 'ts',
    session: { model: { inputShape: [4], layers: [{ type: 'dense', units: 2 }] }, loss: 'mse', seed: 3, maxBatch: 64 },
    configHash: H, dataset: { hash: H, bytes: 1234, path: `/data/${H}` }, heartbeatMs: 2000,
  },
  { type: 'refuse', code: 'kernels', reason: 'kernels ts, the run computes with wasm', retry: false },
  { type: 'ready', configHash: H, datasetHash: H },
  { type: 'weights', version: 7, step: 6, params: Float32Array.from([1.5, -2, 3e-8]) },
  { type: 'task', taskId: 9, step: 6, version: 7, k: 4, rows: 10, start: 1, end: 3, indices: [5, 6, 7, 8, 9], fault: { kind: 'stall', ms: 10 } },
  { type: 'result', taskId: 9, version: 7, blocks: [{ level: 0, index: 1 }, { level: 0, index: 2 }], computeMs: 1.25, sums: Float32Array.from([1, 2, 3, 4]) },
  { type: 'failed', taskId: 9, reason: 'out of memory' },
  { type: 'heartbeat', tasksDone: 3, busy: true },
  { type: 'bye', code: 'finished', reason: 'the run is over' },
];

function from(m: Message): 'worker' | 'coordinator' {
  return ['hello', 'ready', 'result', 'failed', 'heartbeat'].includes(m.type) ? 'worker' : 'coordinator';
}

const frame = rawFrame;

describe('protocol codec', () => {
  it('round-trips every message; the payload arrives as float32 in place', () => {
    for (const m of samples) {
      const bytes = encode(m);
      const back = decode(bytes, from(m), LIMITS);
      expect(back).toEqual(m);
      if (m.type === 'weights' || m.type === 'result') {
        const floats = m.type === 'weights' ? (back as typeof m).params : (back as typeof m).sums;
        expect(floats.buffer).toBe(bytes.buffer); // a view, not a copy
      }
    }
  });

  it('copies the payload out of an unaligned frame (as a socket may deliver it)', () => {
    const m = samples.find((x) => x.type === 'result')!;
    const bytes = encode(m);
    const shifted = new Uint8Array(bytes.length + 1).subarray(1);
    shifted.set(bytes);
    const back = decodeFromWorker(shifted, LIMITS);
    expect(back).toEqual(m);
  });

  it('refuses every kind of bad frame with DPT_ERR_MESSAGE naming what is wrong', () => {
    const bad: [string, Uint8Array, RegExp, ('worker' | 'coordinator')?][] = [
      ['random bytes', Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3]), /header length \d+ exceeds|truncated/],
      ['too short', Uint8Array.from([1, 0]), /shorter than its 4-byte header length/],
      ['truncated msgpack', encode(samples[0]).subarray(0, 20), /truncated|not valid msgpack/],
      ['not msgpack', (() => { const f = new Uint8Array(8); new DataView(f.buffer).setUint32(0, 4, true); f.set([0xc1, 0xc1, 0xc1, 0xc1], 4); return f; })(), /not valid msgpack/],
      ['not a map', frame([1, 2, 3]), /header is not a map/],
      ['unknown type', frame({ type: 'gimme' }), /unknown message type "gimme"/],
      ['wrong direction', encode(samples[4]), /a worker does not send "weights" messages/],
      ['wrong schema', frame({ type: 'failed', taskId: -3, reason: 'x' }), /failed: taskId: /],
      ['unknown field', frame({ type: 'heartbeat', tasksDone: 1, busy: false, extra: 1 }), /unknown field "extra"/],
      ['payload where none belongs', frame({ type: 'heartbeat', tasksDone: 1, busy: false }, new Uint8Array(8)), /carries no payload/],
      ['payload not whole floats', frame({ type: 'result', taskId: 1, version: 1, blocks: [{ level: 0, index: 0 }], computeMs: 1 }, new Uint8Array(6)), /not a whole number of float32s/],
      ['payload in the header', frame({ type: 'result', taskId: 1, version: 1, blocks: [{ level: 0, index: 0 }], computeMs: 1, sums: [1, 2] }), /must travel as the payload/],
      ['payload over the cap', frame({ type: 'result', taskId: 1, version: 1, blocks: [{ level: 0, index: 0 }], computeMs: 1 }, new Uint8Array(4 * 3001)), /3001 floats exceed the limit of 3000/],
      ['oversize frame', new Uint8Array((1 << 20) + 1), /exceeds the limit of 1048576/],
      ['prototype pollution', frame(JSON.parse('{"type":"bye","code":"leaving","reason":"x","__proto__":{"polluted":1}}')), /unknown field|bye/],
    ];
    for (const [what, bytes, message, sender] of bad) {
      let err: unknown;
      try {
        decode(bytes, sender ?? 'worker', LIMITS);
      } catch (e) {
        err = e;
      }
      expect(err, what).toMatchObject({ code: 'DPT_ERR_MESSAGE' });
      expect((err as Error).message, what).toMatch(message);
      expect((err as Error).message, what).toMatch(/^message from the worker: /);
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('checks a task\'s indices against its range', () => {
    const t = { type: 'task', taskId: 1, step: 0, version: 1, k: 4, rows: 10, start: 1, end: 3, indices: [1, 2] };
    expect(() => decodeFromCoordinator(frame(t), LIMITS)).toThrow(/task: indices: 2 indices, the range's rows are 5/);
    expect(() => decodeFromCoordinator(frame({ ...t, end: 5 }), LIMITS)).toThrow(/range \[1, 5\) is not inside \[0, 4\)/);
  });
});

describe('content hashes', () => {
  it('do not depend on key order and match node:crypto\'s SHA-256 of the canonical JSON', async () => {
    const { createHash } = await import('node:crypto');
    const a = { b: [1, { y: 2, x: 1 }], a: 'z', u: undefined };
    expect(canonicalJson(a)).toBe('{"a":"z","b":[1,{"x":1,"y":2}]}');
    expect(hashJson(a)).toBe(hashJson({ a: 'z', b: [1, { x: 1, y: 2 }] }));
    expect(hashJson(a)).toBe(createHash('sha256').update(canonicalJson(a)).digest('hex'));
  });
});
