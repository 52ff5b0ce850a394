// The collective, simulated with its real code: the coordinator's
// Conductor (src/collective/conductor.ts: the cut by measured speed, the
// orders, the commit, the stall timers on simulated time) and one
// Member per worker (src/collective/member.ts: parts to owners, the owner's
// SliceReducer, the all-gather, the commit). What they send is moved over
// the simulated links with the byte count it has for the real model (the
// plan's slices of the real gradient vector, bf16 or f32: vectorBytes);
// the vectors the real code handles are shortened to SHORT_SLICE floats a
// slice, which changes no decision it takes. Modelled: the compute of a
// range (measured micro-shard times), an owner's adds, the update (with a
// worker's own per-step work), the coordinator's hash and its own step.
import { createHash } from 'node:crypto';
import { Conductor } from '../../src/collective/conductor.js';
import { Member } from '../../src/collective/member.js';
import { sliceBounds, vectorBytes } from '../../src/collective/schedule.js';
import type { Commit, Order, Part, Reduced } from '../../src/protocol/collective-messages.js';
import type { GradWire } from '../../src/reduce/bf16.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import type { MemberMessage } from '../../src/protocol/messages.js';
import { addsFor } from './star.js';
import { timeSteps, transfer, work, worked, type Machine, type RunFigures, type Workload } from './model.js';

/** Floats per slice in the vectors the real code handles here. */
const SHORT_SLICE = 16;

function sha(floats: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength)).digest('hex');
}

export async function simulateCollective(w: Workload, m: Machine, members: number, steps: number, warm: number, wire: GradWire): Promise<RunFigures> {
  const G = w.gradLen;
  const short = SHORT_SLICE * members;
  const host = (id: string) => `w${Number(id.slice(1))}`;
  const ids = Array.from({ length: members }, (_, i) => `m${i}`);
  /** Bytes on the wire of a message, for the real model: slices of the real gradient vector. */
  const bytesOf = (msg: Order | Commit | Reduced | Part | MemberMessage): number => {
    switch (msg.type) {
      case 'order': return 200 + 40 * msg.contributors.length + 4 * msg.indices.length;
      case 'part':
      case 'reduced': {
        const [from, to] = sliceBounds(G, members, msg.slice);
        return vectorBytes(from, to, w.numTrainable, wire, msg.type === 'part' ? msg.blocks.length : 1);
      }
      case 'commit': return 150;
      default: return 60;
    }
  };
  const ms: Member[] = [];
  /** Sends of a reduced slice waiting for its owner's adds (the first send pays them), or 'done'. */
  const reducing = new Map<string, (() => void)[] | 'done'>();
  /** An owner reduces its slice once, before its first send of it (to the coordinator or a peer): its adds, at the real slice's length. */
  const afterReduce = (me: string, msg: Reduced, send: () => void): void => {
    const key = `${msg.step}/${msg.attempt}/${msg.slice}`;
    const waiting = reducing.get(key);
    if (waiting === 'done') { send(); return; }
    if (waiting !== undefined) { waiting.push(send); return; }
    const sends = [send];
    reducing.set(key, sends);
    work(m, me, (w.k - 1) * (G / members) * w.addMsPerFloat, () => {
      reducing.set(key, 'done');
      for (const f of sends) f();
    });
  };
  const conductor = new Conductor({
    gradLen: short, numTrainable: short, wire, clock: m.q, stepTimeoutMs: 0, checkEvery: 0,
    io: {
      send: (id, msg) => transfer(m, 'coordinator', host(id), bytesOf(msg), () => deliver(ms[Number(id.slice(1))], 'coordinator', msg)),
      drop: (id, reason) => { throw new Error(`simulated member ${id} dropped: ${reason}`); },
      hash: sha,
      resync: (id, reason) => { throw new Error(`simulated member ${id} resynced: ${reason}`); },
      log: () => {},
    },
  });
  for (const id of ids) {
    const me = host(id);
    const member: Member = new Member(id, short, short, {
      compute: (o) => {
        const c = o.contributors[o.you];
        const leaves = c.end - c.start;
        const blocks = leaves > 0 ? alignedBlocks(o.k, c.start, c.end).length : 0;
        const rounding = wire === 'bf16' ? 2 * leaves * G * w.roundMsPerFloat : 0;
        work(m, me, leaves * w.leafMs(o.rows / o.k) + addsFor(leaves, blocks) * G * w.addMsPerFloat + rounding,
          () => member.computed(o.step, o.attempt, new Float32Array(blocks * short)));
      },
      sendPeer: (peer, msg) => {
        const send = () => transfer(m, me, host(peer), bytesOf(msg), () => deliver(ms[Number(peer.slice(1))], id, msg));
        if (msg.type === 'reduced') afterReduce(me, msg, send);
        else send();
      },
      sendCoordinator: (msg) => {
        const send = () => transfer(m, me, 'coordinator', bytesOf(msg), () => toConductor(id, msg));
        if (msg.type === 'reduced') afterReduce(me, msg, send);
        else send();
      },
      apply: () => work(m, me, w.size * w.applyMsPerFloat + (m.wire.workerStepMs ?? 0), () => {}),
      hash: sha,
      replicaHash: () => '0'.repeat(64),
      later: (fn, delay) => m.q.setTimer(fn, delay),
    }, -1);
    ms.push(member);
    conductor.in(id, `${me}:7071`, 0);
  }

  function deliver(member: Member, from: string, msg: Order | Commit | Reduced | Part): void {
    let problem: string | null = null;
    if (msg.type === 'order') problem = member.order(msg);
    else if (msg.type === 'commit') problem = member.commitAlone(msg);
    else if (msg.type === 'part') problem = member.part(from, msg);
    else problem = member.reduced(from, msg);
    if (problem !== null) throw new Error(`simulated ${member.id}: ${problem}`);
  }

  function toConductor(id: string, msg: MemberMessage): void {
    switch (msg.type) {
      case 'computed': conductor.computed(id, msg); return;
      case 'reduced': { const p = conductor.reduced(id, msg); if (p !== null) throw new Error(`simulated ${id}: ${p}`); return; }
      case 'need': conductor.need(id, msg); return;
      default: throw new Error(`simulated ${id} sent the coordinator ${msg.type}`);
    }
  }

  return timeSteps(m, members, steps, warm, async (s) => {
    await conductor.step({ step: s, k: w.k, rows: w.batch, indices: new Uint32Array(w.batch), lr: 0.1 });
    // The coordinator hashes the sum (the commit), then the trainer applies the step; the next order goes out after.
    await worked(m, 'coordinator', G * 4 * m.wire.byteMs + w.size * w.applyMsPerFloat + (m.wire.stepMs ?? 0));
  });
}
