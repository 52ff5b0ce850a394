// A member of the collective, worker side (NOTES-coll.md, "One step"):
// pure, its I/O injected, so the Node worker wires it to its sockets and the
// tests and the simulator to in-memory links. It holds the step in progress
// and nothing else; its replica (weights, optimizer state) is the caller's,
// reached through `io.apply`.
//
//   1. order(s, a): (first the commit of s-1 it carries: apply it) plan the
//      step; compute the range (io.compute, answered by computed());
//   2. computed: send every owner its slice of the blocks (part), keep its
//      own, tell the coordinator `computed`;
//   3. part from a peer: checked against the plan, taken by its reducer;
//      with every part, its slice is reduced in the tree's order and sent
//      to every other member and to the coordinator (reduced);
//   4. reduced from a peer (or from the coordinator, answering need): into
//      the step's sum;
//   5. the commit of s (alone, as soon as the coordinator holds the sum; in
//      the order of s+1 when it missed that): with the whole sum
//      and the hash right, apply it (io.apply); otherwise ask the
//      coordinator for what is missing (need) and apply once it came; a
//      sum that hashes wrong is taken again whole from the coordinator, and
//      the owners whose slices differed are reported (peer-fault).
// Frames of an earlier attempt or step are stale: ignored. A part for the
// next step or attempt (a faster peer) is kept until its order comes.
// Anything else a peer sends wrong is returned as a problem: the caller
// closes that link, and the member reports the peer to the coordinator.
import { COORDINATOR_ID, type Commit, type Computed, type Need, type Order, type Pack, type Part, type PeerFault, type Reduced, type ReplicaHash } from '../protocol/collective-messages.js';
import type { GradWire } from '../reduce/bf16.js';
import { garbledFrame } from '../protocol/faults.js';
import { corrupted } from './chaos.js';
import { partsOf, planCollective, type CollectivePlan } from './schedule.js';
import { firstNonFinite, SliceReducer } from './slice-reduce.js';
import { EarlyFrames, type KeptFrame } from './early-frames.js';

export type ToCoordinator = Computed | Reduced | PeerFault | Need | ReplicaHash;

export interface MemberIo {
  /** Computes the blocks of the order's range for this member: answer with member.computed(step, attempt, sums) (blocks x gradLen floats, nodes rounded as the wire says). */
  compute(order: Order): void;
  sendPeer(peerId: string, message: Part | Reduced): void;
  sendCoordinator(message: ToCoordinator): void;
  /** Applies step `step`'s reduced sum (gradLen floats; used as scratch) to the replica with learning rate lr. */
  apply(step: number, lr: number, sum: Float32Array): void;
  /** SHA-256 (hex) of floats' bytes. */
  hash(floats: Float32Array): string;
  /** SHA-256 (hex) of the replica: its weights, then its optimizer state. */
  replicaHash(): string;
  /** SHA-256 (hex) of the replica's weights (what a step computes with); absent: not checked per step. */
  weightsHash?(): string;
  /**
   * Calls fn after ms (absent: never). A commit whose slices have not all
   * come by then asks the coordinator for them (a frame lost on a peer
   * link); owners that are lost the coordinator sends of its own accord.
   */
  later?(fn: () => void, ms: number): { cancel(): void };
  log?(line: string): void;
  /** `--chaos` (tests, demonstrations): die now (a process exits), send bytes that are no frame to a peer. */
  crash?(): void;
  sendPeerRaw?(peerId: string, bytes: Uint8Array): void;
  /** A frame of an earlier step or attempt, ignored; a replica that starts an earlier step (a rewind) may want it. */
  stale?(from: string, message: Part | Reduced): void;
}

/** How long a commit waits for the owners' slices before asking the coordinator. */
export const NEED_AFTER_MS = 1000;

interface Current {
  readonly order: Order;
  readonly plan: CollectivePlan;
  readonly me: number;
  readonly reducer: SliceReducer | null;
  /** The step's reduced sum, slice by slice as they come. */
  readonly sum: Float32Array;
  readonly have: boolean[];
  /** Its blocks are computed (and its parts sent). */
  computed: boolean;
  /** The sum as gathered from the owners, while it is taken again from the coordinator (it hashed wrong). */
  suspect: Float32Array | null;
  /** Its own slice has been reduced and sent. */
  reduced: boolean;
  /** Slices that came from the coordinator (a late copy from their owner is then not an offense). */
  readonly filled: boolean[];
}

type CommitRef = NonNullable<Order['commit']>;

export class Member {
  /** The last step applied to the replica (-1: none since the replica was set). */
  private applied: number;
  private cur: Current | null = null;
  /** The previous step, while its commit has not come (its sum is needed for it). */
  private prev: Current | null = null;
  /** A commit waiting for slices (missing, or taken again from the coordinator), and the order that carried it. */
  private waiting: { order: Order | null; readonly commit: CommitRef; timer: { cancel(): void } | null } | null = null;
  /** Frames of a step or attempt not ordered yet (early-frames.ts). */
  private readonly early: EarlyFrames;
  private readonly checkAfter = new Set<number>();

  constructor(
    readonly id: string, private readonly gradLen: number, private readonly numTrainable: number,
    private readonly io: MemberIo, appliedThrough: number,
  ) {
    this.applied = appliedThrough;
    this.early = new EarlyFrames(gradLen);
  }

  /** The last step its replica holds. */
  get appliedStep(): number {
    return this.applied;
  }

  /** A new replica (join, resync): it starts step `step`; anything in progress is dropped. */
  reset(step: number): void {
    this.applied = step - 1;
    this.cur = null;
    this.prev = null;
    this.waiting = null;
    this.early.drain();
  }

  /** The frames kept for steps not ordered yet: a member that takes a new replica hands them to its successor. */
  drainEarly(): KeptFrame[] {
    return this.early.drain();
  }

  // ---- from the coordinator

  /** An order. Returns a problem (the member is out of step with the coordinator), or null. */
  order(o: Order): string | null {
    if (o.contributors[o.you]?.id !== this.id) return `the order names contributor ${o.you} ${o.contributors[o.you]?.id ?? '?'}, this member is ${this.id}`;
    if (o.commit !== undefined) {
      const problem = this.commit(o.commit, o);
      if (problem !== null) return problem;
      if (this.waiting !== null) return null; // resumed once the missing slices came
    } else if (this.waiting !== null && this.waiting.order === null && this.waiting.commit.step === o.step - 1) {
      // The commit came alone and waits for slices: the order starts once it is applied.
      this.waiting.order = o;
      return null;
    }
    return this.start(o);
  }

  /** A commit alone (the last step of a run, or a step that ran on the star: its sum in `sum`). */
  commitAlone(c: Commit): string | null {
    if (c.sum.length > 0) {
      if (c.sum.length !== this.gradLen) return `a commit with ${c.sum.length} floats, the gradient vector has ${this.gradLen}`;
      if (c.step !== this.applied + 1) return `a commit of step ${c.step + 1}, the replica is at step ${this.applied + 1}`;
      if (this.io.hash(c.sum) !== c.hash) return `the sum committed for step ${c.step + 1} does not hash to its hash`;
      this.applyStep(c.step, c.lr, c.sum.slice());
      this.cur = this.cur?.order.step === c.step ? null : this.cur;
      return null;
    }
    return this.commit({ step: c.step, attempt: c.attempt, hash: c.hash, lr: c.lr }, null);
  }

  // ---- from the compute

  /** The blocks of the current order's range: blocks x gradLen floats. */
  computed(step: number, attempt: number, sums: Float32Array): void {
    const c = this.cur;
    if (c === null || c.order.step !== step || c.order.attempt !== attempt) return; // superseded meanwhile
    const G = this.gradLen;
    const mine = c.plan.contributors[c.me];
    if (sums.length !== mine.blocks.length * G) throw new RangeError(`${sums.length} floats for ${mine.blocks.length} blocks of ${G}`);
    const blocks = mine.blocks.map((b) => ({ level: b.level, index: b.index }));
    const fault = c.order.fault?.kind;
    let garbled = false;
    for (const p of partsOf(c.plan, c.me)) {
      const len = p.end - p.from;
      if (fault === 'garble' && !garbled && this.io.sendPeerRaw !== undefined) {
        // A frame that is no message, in place of its first part: the owner drops the link and reports it.
        garbled = true;
        this.io.log?.(`chaos: step ${step + 1}: sending ${c.order.contributors[p.to].id} a garbled part`);
        this.io.sendPeerRaw(c.order.contributors[p.to].id, garbledFrame(step));
        continue;
      }
      // One block: a view (the frame is encoded on sending); more: their slices one after the other.
      let out = sums.subarray(p.from, p.end);
      if (p.blocks.length > 1) {
        out = new Float32Array(p.blocks.length * len);
        p.blocks.forEach((_, b) => out.set(sums.subarray(b * G + p.from, b * G + p.end), b * len));
      }
      this.io.sendPeer(c.order.contributors[p.to].id, {
        type: 'part', step, attempt, slice: p.slice, blocks, pack: this.pack(p.from, p.end, p.blocks.length), sums: out,
      });
    }
    if (c.reducer !== null) {
      // Views: `sums` is not written again before this step's slice is reduced (the next compute comes after its commit).
      const own = mine.blocks.map((_, b) => sums.subarray(b * G + mine.from, b * G + mine.to));
      const problem = c.reducer.add(c.me, blocks, own);
      if (problem !== null) throw new Error(`own part: ${problem}`);
    }
    c.computed = true;
    this.io.sendCoordinator({ type: 'computed', step, attempt, computeMs: 0, ...this.weightsRef() });
    if ((fault === 'crash' || fault === 'disconnect') && this.io.crash !== undefined) {
      // Its parts are out, its slice not reduced: it dies in the middle of the reduction.
      this.io.log?.(`chaos: step ${step + 1}: dying in the middle of the reduction`);
      this.io.crash();
      return;
    }
    this.tryReduce(c);
  }

  // ---- from peers

  /** A part from peer `from`. Returns a problem (the caller drops the link; the member has reported it), or null. */
  part(from: string, p: Part): string | null {
    const c = this.cur;
    if (c === null || p.step > c.order.step || (p.step === c.order.step && p.attempt > c.order.attempt)) return this.keep(from, p);
    if (p.step < c.order.step || p.attempt < c.order.attempt) return this.stale(from, p);
    const sender = c.order.contributors.findIndex((x) => x.id === from);
    if (sender < 0) return this.fault(p.step, p.attempt, from, `sent a part of step ${p.step + 1}, in which it has no range`);
    if (c.reducer === null || p.slice !== c.plan.contributors[c.me].slice) {
      return this.fault(p.step, p.attempt, from, `sent a part of slice ${p.slice}, this member owns slice ${c.plan.contributors[c.me].slice}`);
    }
    const want = this.pack(c.reducer.from, c.reducer.to, p.blocks.length);
    if (p.pack.half !== want.half || p.pack.length !== want.length) {
      return this.fault(p.step, p.attempt, from, `sent a part packed ${p.pack.length}/${p.pack.half}, the slice is ${want.length}/${want.half}`);
    }
    const problem = c.reducer.add(sender, p.blocks, p.sums);
    if (problem !== null) return this.fault(p.step, p.attempt, from, problem);
    this.tryReduce(c);
    return null;
  }

  /** A reduced slice from the peer that owns it, or from the coordinator. Returns a problem, or null. */
  reduced(from: string, r: Reduced): string | null {
    const c = r.step === this.cur?.order.step ? this.cur : r.step === this.prev?.order.step ? this.prev : null;
    if (c === null || r.attempt !== c.order.attempt) {
      // A reduced slice of a step not ordered here yet (an owner that did not wait for this member: it has no range), kept.
      if (this.cur === null || r.step > this.cur.order.step || (r.step === this.cur.order.step && r.attempt > this.cur.order.attempt)) return this.keep(from, r);
      return this.stale(from, r);
    }
    const owner = c.plan.owners[r.slice];
    if (owner === undefined) return this.fault(r.step, r.attempt, from, `sent reduced slice ${r.slice}, the step has ${c.plan.owners.length}`);
    if (from !== COORDINATOR_ID && c.order.contributors[owner].id !== from) {
      return this.fault(r.step, r.attempt, from, `sent reduced slice ${r.slice}, which ${c.order.contributors[owner].id} owns`);
    }
    const o = c.plan.contributors[owner];
    const want = this.pack(o.from, o.to, 1);
    if (r.pack.length !== want.length || r.pack.half !== want.half) {
      return this.fault(r.step, r.attempt, from, `sent reduced slice ${r.slice} packed ${r.pack.length}/${r.pack.half}, it is ${want.length}/${want.half}`);
    }
    const bad = firstNonFinite(r.sums);
    if (bad >= 0) return this.fault(r.step, r.attempt, from, `sent reduced slice ${r.slice} with a non-finite value at element ${o.from + bad}`);
    if (c.have[r.slice] && from !== COORDINATOR_ID) {
      if (c.filled[r.slice]) return null; // the coordinator's copy came first
      return this.fault(r.step, r.attempt, from, `sent reduced slice ${r.slice} twice`);
    }
    if (from === COORDINATOR_ID) c.filled[r.slice] = true;
    if (c.suspect !== null && from === COORDINATOR_ID && owner !== c.me) {
      const had = c.suspect.subarray(o.from, o.to);
      const at = had.findIndex((x, i) => !Object.is(x, r.sums[i]));
      if (at >= 0) this.fault(r.step, r.attempt, c.order.contributors[owner].id, `its reduced slice ${r.slice} differs from the coordinator's at element ${o.from + at}`);
    }
    c.sum.set(r.sums, o.from);
    c.have[r.slice] = true;
    this.resume();
    return null;
  }

  /** A peer whose link broke or that sent a frame that does not decode: reported for the step in progress. */
  reportPeer(peer: string, reason: string): void {
    const o = this.cur?.order;
    this.fault(o?.step ?? this.applied + 1, o?.attempt ?? 1, peer, reason);
  }

  // ---- internals

  /** A frame of an earlier step or attempt: ignored here (the io may keep it for a replica that rewinds the steps). */
  private stale(from: string, m: Part | Reduced): null {
    this.io.stale?.(from, m);
    return null;
  }

  /** Keeps a frame of a step not ordered yet (early-frames.ts); a sender far ahead is reported. */
  private keep(from: string, m: Part | Reduced): string | null {
    const problem = this.early.keep(from, m, this.applied);
    return problem === null ? null : this.fault(m.step, m.attempt, from, problem);
  }

  /** Hands over frames a predecessor kept (see drainEarly). */
  adopt(early: readonly KeptFrame[]): void {
    for (const e of early) if (e.message.step > this.applied) this.keep(e.from, e.message);
  }

  /** The hash of the weights the step was computed with, when the io gives one. */
  private weightsRef(): { weights?: string } {
    const h = this.io.weightsHash?.();
    return h === undefined ? {} : { weights: h };
  }

  private pack(from: number, to: number, vectors: number): Pack {
    const wire: GradWire = this.cur?.order.wire ?? 'f32';
    return { vectors, length: to - from, half: wire === 'bf16' ? Math.max(0, Math.min(to, this.numTrainable) - from) : 0 };
  }

  private fault(step: number, attempt: number, peer: string, reason: string): string {
    this.io.sendCoordinator({ type: 'peer-fault', step, attempt: Math.max(1, attempt), peer, reason: reason.slice(0, 1000) });
    return reason;
  }

  private start(o: Order): string | null {
    if (o.step !== this.applied + 1) return `ordered step ${o.step + 1}, the replica is at step ${this.applied + 1}`;
    const plan = planCollective(o.k, this.gradLen, o.contributors.map((c) => ({ start: c.start, end: c.end, owner: c.id !== COORDINATOR_ID })));
    const me = o.you;
    const slice = plan.contributors[me].slice;
    const reducer = slice < 0 ? null : new SliceReducer(plan, slice, this.numTrainable, o.wire);
    if (this.cur !== null && this.cur.order.step < o.step) this.prev = this.cur;
    this.cur = {
      order: o, plan, me, reducer, sum: new Float32Array(this.gradLen), have: plan.owners.map(() => false), computed: false, suspect: null, reduced: false,
      filled: plan.owners.map(() => false),
    };
    if (o.checkReplica) this.checkAfter.add(o.step);
    const early = this.drainEarly();
    for (const e of early) {
      const m = e.message;
      if (m.step > o.step || (m.step === o.step && m.attempt > o.attempt)) this.keep(e.from, m);
      else if (m.step === o.step && m.attempt === o.attempt) {
        if (m.type === 'part') this.part(e.from, m);
        else this.reduced(e.from, m);
      }
    }
    const cur = this.cur;
    const go = () => {
      if (this.cur !== cur) return; // superseded while it stalled
      if (plan.contributors[me].blocks.length > 0) this.io.compute(o);
      else this.computedNothing(cur);
    };
    if (o.fault?.kind === 'stall' && this.io.later !== undefined) {
      this.io.log?.(`chaos: step ${o.step + 1}: stalling ${o.fault.ms ?? 0} ms before computing`);
      this.io.later(go, o.fault.ms ?? 0);
    } else {
      go();
    }
    return null;
  }

  /** A member with an empty range: nothing to send; it only reduces its slice. */
  private computedNothing(c: Current): void {
    const fault = c.order.fault?.kind;
    const peer = c.order.contributors.find((x, i) => i !== c.me && x.id !== COORDINATOR_ID);
    if (fault === 'garble' && peer !== undefined && this.io.sendPeerRaw !== undefined) {
      // No part to replace (a slow member's range can be empty): the garbled frame goes to a peer all the same.
      this.io.log?.(`chaos: step ${c.order.step + 1}: sending ${peer.id} a garbled part`);
      this.io.sendPeerRaw(peer.id, garbledFrame(c.order.step));
    }
    c.computed = true;
    this.io.sendCoordinator({ type: 'computed', step: c.order.step, attempt: c.order.attempt, computeMs: 0, ...this.weightsRef() });
    if ((fault === 'crash' || fault === 'disconnect') && this.io.crash !== undefined) {
      this.io.log?.(`chaos: step ${c.order.step + 1}: dying in the middle of the reduction`);
      this.io.crash();
      return;
    }
    this.tryReduce(c);
  }

  private tryReduce(c: Current): void {
    if (c.reduced || c.reducer === null || !c.computed || !c.reducer.complete()) return;
    c.reduced = true;
    const r = c.reducer;
    const out = c.sum.subarray(r.from, r.to);
    r.reduce(out);
    c.have[r.slice] = true;
    const msg: Reduced = { type: 'reduced', step: c.order.step, attempt: c.order.attempt, slice: r.slice, pack: this.pack(r.from, r.to, 1), sums: out };
    // The coordinator's copy first: the commit waits for it (the peers need theirs only when the commit comes),
    // and one link carries both.
    this.io.sendCoordinator(msg);
    let corrupt = c.order.fault?.kind === 'corrupt';
    c.order.contributors.forEach((x, i) => {
      if (i === c.me || x.id === COORDINATOR_ID) return;
      if (corrupt) {
        corrupt = false;
        this.io.log?.(`chaos: step ${c.order.step + 1}: sending ${x.id} a corrupted slice`);
        this.io.sendPeer(x.id, corrupted(msg, c.order.fault?.index ?? 0));
        return;
      }
      this.io.sendPeer(x.id, msg);
    });
    this.resume();
  }

  /** Applies the commit of a step whose sum this member gathered; with slices missing, asks the coordinator and waits. */
  private commit(ref: CommitRef, then: Order | null): string | null {
    if (ref.step <= this.applied) return null; // applied already (a resent commit)
    if (ref.step !== this.applied + 1) return `a commit of step ${ref.step + 1}, the replica is at step ${this.applied + 1}`;
    const c = this.cur?.order.step === ref.step ? this.cur : this.prev?.order.step === ref.step ? this.prev : null;
    if (c === null || c.order.attempt !== ref.attempt) return `a commit of step ${ref.step + 1} attempt ${ref.attempt}, which this member did not take part in`;
    if (c.have.some((h) => !h)) {
      // Owners' slices still on their way: wait for them (and ask the coordinator if they stop coming).
      this.waiting = { order: then, commit: ref, timer: this.needTimer(ref, c) };
      return null;
    }
    if (this.io.hash(c.sum) !== ref.hash) {
      // A slice differs from the coordinator's: take the whole sum again from it; an owner whose slice differs is reported.
      c.suspect = c.sum.slice();
      c.have.fill(false);
      this.waiting = { order: then, commit: ref, timer: null };
      this.io.sendCoordinator({ type: 'need', step: ref.step, attempt: ref.attempt, slices: c.plan.owners.map((_, i) => i) });
      this.io.log?.(`step ${ref.step + 1}: the gathered sum does not hash to the commit's; asking the coordinator for every slice`);
      return null;
    }
    this.applyStep(ref.step, ref.lr, c.sum);
    if (this.prev === c) this.prev = null;
    return null;
  }

  /**
   * Asks the coordinator for the slices still missing when none has come for NEED_AFTER_MS (re-armed at each
   * one: the commit comes as soon as the coordinator holds the sum, and on a slow link the peers' copies may
   * still be coming one after the other).
   */
  private needTimer(ref: CommitRef, c: Current): { cancel(): void } | null {
    return this.io.later?.(() => {
      if (this.waiting?.commit !== ref) return;
      const missing = c.have.flatMap((h, i) => (h ? [] : [i]));
      this.io.log?.(`step ${ref.step + 1}: slices ${missing.join(', ')} had not come ${NEED_AFTER_MS} ms after the commit or the last slice; asking the coordinator`);
      this.io.sendCoordinator({ type: 'need', step: ref.step, attempt: ref.attempt, slices: missing });
    }, NEED_AFTER_MS) ?? null;
  }

  private applyStep(step: number, lr: number, sum: Float32Array): void {
    this.io.apply(step, lr, sum);
    this.applied = step;
    if (this.checkAfter.delete(step)) this.io.sendCoordinator({ type: 'replica-hash', step, hash: this.io.replicaHash() });
  }

  /** A commit waiting for slices: apply it once they are all there, then start the order that carried it. */
  private resume(): void {
    const w = this.waiting;
    if (w === null) return;
    const c = this.cur?.order.step === w.commit.step ? this.cur : this.prev?.order.step === w.commit.step ? this.prev : null;
    if (c === null) return;
    if (c.have.some((h) => !h)) {
      // A slice came, others have not: the wait for them starts again.
      if (w.timer !== null) { w.timer.cancel(); w.timer = this.needTimer(w.commit, c); }
      return;
    }
    this.waiting = null;
    w.timer?.cancel();
    c.suspect = null;
    const problem = this.commit(w.commit, w.order);
    if (problem !== null) { this.io.log?.(problem); return; }
    if (this.waiting === null && w.order !== null) {
      const p = this.start(w.order);
      if (p !== null) this.io.log?.(p);
    }
  }
}
