// A `dptrain worker --peer-listen` process as a member of the collective:
// the pure Member (src/collective/member.ts) wired to this process's I/O.
//   - its replica: the session's model and the optimizer's state, as the
//     coordinator's `replica` message gives them (on joining, on a resync);
//     a commit is applied with applyStep, the trainer's own, then the
//     weights go to what computes (this thread, or its threads);
//   - its compute: the range compute of the star's tasks (range-compute.ts),
//     with the nodes rounded as the step's wire says;
//   - its peers: links.ts (frames to an owner over this member's own
//     connection to it; frames from peers through the one decode); a broken
//     link or a bad frame is reported to the coordinator (peer-fault);
//   - the coordinator: the worker's own connection (send).
import { createHash } from 'node:crypto';
import type { Commit, Order, Part, Reduced, Replica } from '../../src/protocol/collective-messages.js';
import { encode } from '../../src/protocol/codec.js';
import type { MemberMessage, Session } from '../../src/protocol/messages.js';
import { Member, type ToCoordinator } from '../../src/collective/member.js';
import { EARLY_VECTORS } from '../../src/collective/early-frames.js';
import { buildModel, type Model } from '../../src/model/model.js';
import { createOptimizerState, OptimizerConfig, stateArrays, type OptimizerState } from '../../src/optim/optimizer.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { applyStep, gradLength, planStep, type StepPlan } from '../../src/train/step.js';
import type { RangeCompute } from '../range-compute.js';
import type { PeerLinks } from './links.js';

export type FromConductor = Order | Commit | Reduced | Part | Replica;

/** Peer frames kept while the replica is on its way. */
const MAX_WAITING = 4096;

interface Replicated {
  readonly model: Model;
  readonly plan: StepPlan;
  readonly optimizer: OptimizerConfig;
  readonly state: OptimizerState;
}

export class NetMember {
  private replica: Replicated | null = null;
  private member: Member | null = null;
  /** Peers' addresses, from the orders. */
  private readonly addresses = new Map<string, string>();
  private sums = new Float32Array(0);

  constructor(
    readonly id: string, private readonly session: Session, private readonly compute: RangeCompute,
    private readonly links: PeerLinks, private readonly toCoordinator: (m: MemberMessage) => void, private readonly log: (line: string) => void,
  ) {}

  /** A message of the collective from the coordinator. */
  fromCoordinator(m: FromConductor): void {
    if (m.type === 'replica') { this.onReplica(m); return; }
    const member = this.member;
    if (member === null) { this.log(`ignored a ${m.type} before the replica`); return; }
    let problem: string | null = null;
    switch (m.type) {
      case 'order':
        for (const c of m.contributors) if (c.address !== '') this.addresses.set(c.id, c.address);
        problem = member.order(m);
        break;
      case 'commit': problem = member.commitAlone(m); break;
      case 'reduced': problem = member.reduced('coordinator', m); break;
      case 'part': problem = member.part('coordinator', m); break;
    }
    if (problem !== null) this.log(`collective: ${problem}`);
  }

  /** A frame from a peer, decoded by the links. */
  fromPeer(from: string, m: Part | Reduced): string | null {
    const member = this.member;
    if (member === null) {
      // Its replica is on its way (the coordinator sends them one after the other): a faster peer's frames wait for it.
      if (this.waiting.length >= MAX_WAITING) return 'sent more frames than this member keeps before its replica';
      this.waiting.push({ from, message: m });
      return null;
    }
    return m.type === 'part' ? member.part(from, m) : member.reduced(from, m);
  }

  /** Peers' frames that came before the replica, and the last ones the member took for stale (a replica may rewind the steps). */
  private waiting: { from: string; message: Part | Reduced }[] = [];
  private recentStale: { from: string; message: Part | Reduced }[] = [];
  private staleFloats = 0;

  /** A peer's link failed, or it sent a bad frame: the coordinator is told. */
  peerBroken(peer: string, reason: string): void {
    this.member?.reportPeer(peer, reason);
  }

  private onReplica(r: Replica): void {
    const model = buildModel(this.session.model);
    const parsed = OptimizerConfig.safeParse(r.optimizer);
    if (!parsed.success) { this.log(`collective: the replica's optimizer is not one this worker knows (${parsed.error.message.slice(0, 200)})`); return; }
    const optimizer = parsed.data;
    const state = createOptimizerState(optimizer, model.numTrainable);
    const arrays = stateArrays(optimizer, state).map((a) => a.array);
    const need = model.size + arrays.reduce((n, a) => n + a.length, 0);
    if (r.state.length !== need) {
      this.log(`collective: a replica of ${r.state.length} floats, the session's weights and optimizer state need ${need}`);
      return;
    }
    model.params.set(r.state.subarray(0, model.size));
    let at = model.size;
    for (const a of arrays) { a.set(r.state.subarray(at, at + a.length)); at += a.length; }
    state.step = r.updates;
    // Frames kept so far (by the member this one replaces, or before any): the new member takes those of its steps.
    const early = [...this.waiting, ...(this.member?.drainEarly() ?? []), ...this.recentStale];
    this.waiting = [];
    this.recentStale = [];
    this.staleFloats = 0;
    this.replica = { model, plan: planStep(model), optimizer, state };
    this.compute.setWeights(-1 - r.step, model.params);
    const rep = this.replica;
    this.member = new Member(this.id, gradLength(model), model.numTrainable, {
      compute: (o) => { void this.computeOrder(o); },
      sendPeer: (peer, msg) => {
        const address = this.addresses.get(peer);
        if (address === undefined) { this.log(`collective: no address for ${peer}`); return; }
        this.links.send(peer, address, encode(msg));
      },
      sendCoordinator: (msg: ToCoordinator) => this.toCoordinator(msg),
      apply: (step, lr, sum) => {
        applyStep(rep.model, rep.plan, sum, rep.optimizer, rep.state, lr);
        this.compute.setWeights(-2 - step, rep.model.params);
      },
      hash: (floats) => sha256(floats),
      replicaHash: () => {
        const h = createHash('sha256').update(bytes(rep.model.params));
        for (const a of stateArrays(rep.optimizer, rep.state)) h.update(bytes(a.array));
        return h.digest('hex');
      },
      weightsHash: () => sha256(rep.model.params),
      later: (fn, ms) => { const t = setTimeout(fn, ms); return { cancel: () => clearTimeout(t) }; },
      stale: (from, message) => {
        // The last frames only: at most EARLY_VECTORS gradient vectors' worth.
        this.recentStale.push({ from, message });
        this.staleFloats += message.sums.length;
        while (this.staleFloats > EARLY_VECTORS * gradLength(model)) this.staleFloats -= this.recentStale.shift()!.message.sums.length;
      },
      crash: () => process.exit(70),
      sendPeerRaw: (peer, raw) => {
        const address = this.addresses.get(peer);
        if (address !== undefined) this.links.send(peer, address, raw);
      },
      log: (line) => this.log(`collective: ${line}`),
    }, r.step - 1);
    this.member.adopt(early);
    this.log(`collective: holds the replica for step ${r.step + 1}`);
  }

  private async computeOrder(o: Order): Promise<void> {
    const me = o.contributors[o.you];
    const blocks = alignedBlocks(o.k, me.start, me.end);
    const n = blocks.length * this.compute.gradLen;
    if (this.sums.length < n) this.sums = new Float32Array(n);
    const sums = this.sums.subarray(0, n);
    try {
      if (o.wire !== (this.session.gradWire ?? 'f32')) throw new Error(`the order's wire is ${o.wire}, the session's ${this.session.gradWire ?? 'f32'}`);
      await this.compute.compute({ step: o.step, k: o.k, rows: o.rows, start: me.start, end: me.end, indices: o.indices, version: this.compute.version }, sums);
    } catch (err) {
      this.log(`collective: step ${o.step + 1}: computing micro-shards ${me.start}-${me.end - 1} failed: ${(err as Error).message}`);
      return;
    }
    this.member?.computed(o.step, o.attempt, sums);
  }
}

function bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function sha256(a: Float32Array): string {
  return createHash('sha256').update(bytes(a)).digest('hex');
}
