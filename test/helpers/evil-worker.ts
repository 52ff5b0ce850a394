// A misbehaving worker for the bad-input tests: it speaks the real protocol
// (ws + the codec) well enough to be let in, then does one wrong thing.
// Each offense is one connection; the coordinator must drop it, name it in
// its log, and finish the run with the fault-free weights.
import { WebSocket } from 'ws';
import { decodeFromCoordinator, encode } from '../../src/protocol/codec.js';
import { hashJson } from '../../src/protocol/content-hash.js';
import { PROTOCOL_VERSION, type CoordinatorMessage, type Task } from '../../src/protocol/messages.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { buildModel } from '../../src/model/model.js';
import { gradLength } from '../../src/train/step.js';
import { shardBounds } from '../../src/data/microshard.js';

/** Offenses before the handshake is complete: the frame sent instead of hello (null: say nothing). */
export const BEFORE_HELLO = {
  'random bytes': () => Uint8Array.from({ length: 40 }, (_, i) => (i * 97 + 13) & 0xff),
  'truncated msgpack': () => encode(hello('')).subarray(0, 12),
  'wrong schema': () => encode({ ...hello(''), threads: 0 }),
  'oversize frame': () => new Uint8Array(8 << 20),
  'silent client': () => null,
} as const;

/** Offenses in answer to a task. */
export const AFTER_TASK = ['wrong length', 'NaN', 'stale step', 'range not given', 'never answers'] as const;

export type Offense = keyof typeof BEFORE_HELLO | (typeof AFTER_TASK)[number] | 'wrong protocol' | 'wrong token';

function hello(token: string) {
  return {
    type: 'hello' as const, protocol: PROTOCOL_VERSION, token, kind: 'process' as const, kernels: 'wasm' as const,
    threads: 1, host: 'evil', software: 'evil-worker',
  };
}

/** Connects, commits one offense, and resolves with how the connection ended (close code and what was received). */
export function offend(url: string, token: string, offense: Offense): Promise<{ code: number; received: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const received: string[] = [];
    let gradLen = 0;
    ws.on('error', () => {}); // a dropped peer may see ECONNRESET; the close event tells the rest
    ws.on('open', () => {
      if (offense in BEFORE_HELLO) {
        const frame = BEFORE_HELLO[offense as keyof typeof BEFORE_HELLO]();
        if (frame !== null) ws.send(frame);
        return;
      }
      ws.send(encode({ ...hello(offense === 'wrong token' ? `${token}-not` : token), protocol: offense === 'wrong protocol' ? 99 : PROTOCOL_VERSION }));
    });
    ws.on('message', (data: Buffer) => {
      let msg: CoordinatorMessage;
      try {
        msg = decodeFromCoordinator(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), { maxFrameBytes: 1 << 30 });
      } catch (err) {
        reject(err);
        return;
      }
      received.push(msg.type === 'refuse' || msg.type === 'bye' ? `${msg.type}: ${msg.reason}` : msg.type);
      if (msg.type === 'welcome') {
        gradLen = gradLength(buildModel(msg.session.model));
        ws.send(encode({ type: 'ready', configHash: hashJson(msg.session), datasetHash: msg.dataset.hash }));
        // Heartbeats as a live worker sends them: it is to be dropped for its offense, not for silence
        // while the coordinator waits for the other workers (which, on a loaded machine, can take over a
        // second). The one that never answers is a hung worker: it sends nothing at all.
        if (offense !== 'never answers') {
          const beat = setInterval(() => ws.send(encode({ type: 'heartbeat', tasksDone: 0, busy: false })), msg.heartbeatMs);
          ws.on('close', () => clearInterval(beat));
        }
      }
      if (msg.type === 'task') answerWrongly(ws, msg, gradLen, offense);
    });
    ws.on('close', (code) => resolve({ code, received }));
  });
}

function answerWrongly(ws: WebSocket, t: Task, gradLen: number, offense: Offense): void {
  const nodes = alignedBlocks(t.k, t.start, t.end);
  const blocks = nodes.map((b) => ({ level: b.level, index: b.index }));
  // Plausible but for the offense: each block's sample count (its last float) is right.
  const sums = new Float32Array(blocks.length * gradLen);
  nodes.forEach((node, b) => {
    sums[(b + 1) * gradLen - 1] = shardBounds(t.rows, t.k, node.end - 1)[1] - shardBounds(t.rows, t.k, node.start)[0];
  });
  const base = { type: 'result' as const, taskId: t.taskId, version: t.version, blocks, computeMs: 1 };
  switch (offense) {
    case 'wrong length':
      ws.send(encode({ ...base, sums: sums.subarray(0, sums.length - 3) }));
      return;
    case 'NaN':
      sums[0] = NaN;
      sums[gradLen - 3] = Infinity;
      ws.send(encode({ ...base, sums }));
      return;
    case 'stale step':
      ws.send(encode({ ...base, version: t.version - 1, sums }));
      return;
    case 'range not given':
      ws.send(encode({ ...base, taskId: t.taskId + 1_000_000, sums }));
      return;
    case 'never answers':
      return;
    default:
      throw new Error(`${offense} is not an offense in answer to a task`);
  }
}
