// The collective, coordinator side (NOTES-coll.md): membership, the step's
// order, the commit, and what happens when a member is lost. Pure: the
// WebSocket transport wires it to connections, the tests and the simulator
// to in-memory links; time comes from a Clock (stall inspection).
//
// step(job):
//   1. the members of the step: every member that is in sync (its replica
//      starts this step); the cut of [0, K) by their measured speed
//      (alignedSplit, the dispatcher's own), plus the star's part when the
//      engine contributes blocks of its own workers (threads, tabs);
//   2. each member gets its order, carrying the commit of the step before
//      when that member has not had it;
//   3. every owner's reduced slice comes here; with all of them the step's
//      sum is whole: its hash is the commit, and step() resolves with it (the
//      trainer applies it to the master weights: the commit point);
//   4. a member that leaves, is dropped or stalls (stepTimeoutMs) before the
//      sum is whole: the step is redone as attempt a+1 by the others (their
//      frames of attempt a are stale from then on); with fewer than
//      minMembers left it rejects with CollectiveFallback: the engine runs the
//      step on the star and hands the sum to commitStar(), whose commit
//      carries it to the members.
// A member whose replica hash (every checkEvery steps) differs from the
// coordinator's, or that reports it cannot follow, is out of sync: the
// engine resyncs it (a replica message) and it rejoins at a step boundary.
import { type Commit, type Computed, type ContributorRef, type Need, type Order, type Part, type PeerFault, type Reduced, type ReplicaHash } from '../protocol/collective-messages.js';
import type { GradWire } from '../reduce/bf16.js';
import type { Clock } from '../dispatch/clock.js';
import { alignedSplit, CUT_TOLERANCE } from '../dispatch/ranges.js';
import { faultFor, type Fault } from '../dispatch/chaos.js';
import { planCollective, type CollectivePlan } from './schedule.js';
import { ReplicaChecks } from './replica-checks.js';
import { rowsOf } from '../train/range.js';

export interface ConductorIo {
  send(memberId: string, message: Order | Commit | Reduced | Part): void;
  /** The member misbehaved or is lost: disconnect it (the transport then calls leave()). */
  drop(memberId: string, reason: string): void;
  /** SHA-256 (hex) of floats' bytes. */
  hash(floats: Float32Array): string;
  /** A member out of sync (drifted): resync it (replica), it joins again with in(). */
  resync(memberId: string, reason: string): void;
  log(line: string): void;
}

/** Cumulative time of the collective's steps, ms: ordered to computed by all (compute, parts sent), then to the sum whole at the coordinator (the slices' exchange). */
export interface CollectiveStats {
  steps: number;
  computeMs: number;
  exchangeMs: number;
}

/** A step the collective cannot run (too few members): the engine runs it on the star. */
export class CollectiveFallback extends Error {}

export interface StepJob {
  step: number;
  k: number;
  rows: number;
  indices: Uint32Array;
  lr: number;
  /** SHA-256 of the weights the step starts from: a member that computed with others is taken out before the commit. */
  weights?: string;
}

interface MemberState {
  readonly id: string;
  readonly address: string;
  /** The next step its replica starts. */
  next: number;
  /** Steps whose commit it has been sent. */
  committedThrough: number;
  speed: number;
}

interface Attempt {
  readonly job: StepJob;
  readonly number: number;
  readonly ids: string[];
  readonly plan: CollectivePlan;
  readonly sum: Float32Array;
  readonly have: boolean[];
  readonly computed: Set<string>;
  readonly startedAt: number;
  /** When the last member said computed. */
  computedAt: number;
  readonly resolve: (sum: Float32Array) => void;
  readonly reject: (err: Error) => void;
  timer: { cancel(): void } | null;
  settled: boolean;
}

const SPEED_SMOOTHING = 0.3;

export interface ConductorOptions {
  gradLen: number;
  numTrainable: number;
  wire: GradWire;
  io: ConductorIo;
  clock: Clock;
  /** A step not whole this long after its order is redone without the members that have not answered (0: never). */
  stepTimeoutMs: number;
  /** Ask for the members' replica hashes every this many steps (0: never). */
  checkEvery: number;
  /** Fewer members than this: the step runs on the star. */
  minMembers?: number;
  /** `--chaos` faults: slot w is the w-th member of a step; a fault rides in the first attempt's order. */
  chaos?: readonly Fault[];
}

export class Conductor {
  private readonly members = new Map<string, MemberState>();
  private current: Attempt | null = null;
  /** The last committed step and its commit (sent to members with their next order). */
  private last: { step: number; attempt: number; hash: string; lr: number; sum: Float32Array } | null = null;
  private readonly minMembers: number;

  constructor(private readonly o: ConductorOptions) {
    this.minMembers = o.minMembers ?? 2;
    this.checks = new ReplicaChecks(o.checkEvery, (id, reason) => {
      this.members.delete(id);
      o.io.resync(id, reason);
    });
  }

  /** A member whose replica starts step `next` (joined, or resynced). */
  in(id: string, address: string, next: number): void {
    const old = this.members.get(id);
    this.members.set(id, { id, address, next, committedThrough: next - 1, speed: old?.speed ?? NaN });
  }

  /** A member gone (closed, dropped, quarantined): if the step in progress needs it, it is redone without it. */
  leave(id: string, reason: string): void {
    if (!this.members.delete(id)) return;
    this.pushSliceOf(id);
    const a = this.current;
    if (a !== null && !a.settled && a.ids.includes(id)) this.redo(a, [id], `${id} ${reason}`);
  }

  /** Where the collective's steps spent their time (cumulative, ms): from the order to the last member's computed, then to the whole sum. */
  stats(): CollectiveStats {
    return { ...this.timing };
  }

  private readonly timing: CollectiveStats = { steps: 0, computeMs: 0, exchangeMs: 0 };

  /** Members now. */
  count(): number {
    return this.members.size;
  }

  /** Runs one step; resolves with its reduced sum (gradLen floats), rejects with CollectiveFallback when the star must run it. */
  step(job: StepJob): Promise<Float32Array> {
    return new Promise((resolve, reject) => this.attempt(job, 1, resolve, reject));
  }

  /** The step ran on the star (a fallback): the members get its commit with the sum itself. */
  commitStar(step: number, lr: number, sum: Float32Array): void {
    // First the commit of the collective step before, which no order carried.
    this.finish();
    const hash = this.o.io.hash(sum);
    this.last = { step, attempt: 1, hash, lr, sum: sum.slice() };
    this.lastPlan = null;
    this.lastIds = null;
    for (const m of this.members.values()) {
      if (m.next !== step) continue;
      this.o.io.send(m.id, { type: 'commit', step, attempt: 1, hash, lr, sum: this.last.sum });
      m.committedThrough = step;
      m.next = step + 1;
    }
  }

  /** The members get the last commit no order carried (the run ends; a step runs on the star): their replicas end where the coordinator's does. */
  finish(): void {
    const l = this.last;
    if (l === null) return;
    for (const m of this.members.values()) {
      if (m.committedThrough >= l.step || m.next !== l.step + 1) continue;
      this.o.io.send(m.id, { type: 'commit', step: l.step, attempt: l.attempt, hash: l.hash, lr: l.lr, sum: new Float32Array(0) });
      m.committedThrough = l.step;
    }
  }

  // ---- from members

  computed(id: string, c: Computed): void {
    const a = this.current;
    if (a === null || a.settled || c.step !== a.job.step || c.attempt !== a.number) return;
    if (c.weights !== undefined && a.job.weights !== undefined && c.weights !== a.job.weights) {
      // It computed with other weights than the step's: its parts are wrong. The step is redone without it, before any commit.
      this.members.delete(id);
      this.o.io.resync(id, `it computed step ${a.job.step + 1} with weights that hash to ${c.weights.slice(0, 12)}, the step's hash to ${a.job.weights.slice(0, 12)}`);
      this.redo(a, [id], `${id} computed with other weights`);
      return;
    }
    a.computed.add(id);
    if (a.computed.size === a.ids.length) a.computedAt = this.o.clock.now();
    const m = this.members.get(id);
    const i = a.ids.indexOf(id);
    if (m !== undefined && i >= 0) {
      const rows = this.rowsOf(a, i);
      const elapsed = Math.max(1e-3, this.o.clock.now() - a.startedAt);
      if (rows > 0) m.speed = Number.isNaN(m.speed) ? (rows / elapsed) * 1000 : (1 - SPEED_SMOOTHING) * m.speed + SPEED_SMOOTHING * (rows / elapsed) * 1000;
    }
  }

  /** An owner's reduced slice. Returns a problem (the member is dropped), or null. */
  reduced(id: string, r: Reduced): string | null {
    const a = this.current;
    if (a === null || a.settled || r.step !== a.job.step || r.attempt !== a.number) return null; // stale
    const owner = a.plan.owners[r.slice];
    if (owner === undefined || a.ids[owner] !== id) return this.offense(id, `sent reduced slice ${r.slice} of step ${r.step + 1}, which it does not own`);
    const c = a.plan.contributors[owner];
    if (r.sums.length !== c.to - c.from) return this.offense(id, `sent reduced slice ${r.slice} of ${r.sums.length} floats, it has ${c.to - c.from}`);
    if (a.have[r.slice]) return this.offense(id, `sent reduced slice ${r.slice} twice`);
    a.sum.set(r.sums, c.from);
    a.have[r.slice] = true;
    if (a.have.every(Boolean)) this.whole(a);
    return null;
  }

  /** A member asks for slices of a step it must apply (they did not come, or its sum hashed wrong). */
  need(id: string, n: Need): void {
    const l = this.last;
    const a = this.current;
    const src = l !== null && l.step === n.step ? l.sum : a !== null && a.job.step === n.step && a.have.every(Boolean) ? a.sum : null;
    const plan = a !== null && a.job.step === n.step ? a.plan : this.lastPlan;
    if (src === null || plan === null) { this.o.io.resync(id, `it needs slices of step ${n.step + 1}, which the coordinator no longer holds`); return; }
    for (const s of n.slices) {
      const o = plan.owners[s];
      if (o === undefined) continue;
      const c = plan.contributors[o];
      const half = this.o.wire === 'bf16' ? Math.max(0, Math.min(c.to, this.o.numTrainable) - c.from) : 0;
      this.o.io.send(id, { type: 'reduced', step: n.step, attempt: n.attempt, slice: s, pack: { vectors: 1, length: c.to - c.from, half }, sums: src.slice(c.from, c.to) });
    }
  }

  peerFault(id: string, f: PeerFault): void {
    // The reported peer is dropped (its frames were bad, or its link broke): the step is redone without it if it still needs it.
    this.o.io.log(`step ${f.step + 1}: ${id} reports ${f.peer}: ${f.reason}`);
    if (this.members.has(f.peer)) this.o.io.drop(f.peer, `reported by ${id}: ${f.reason}`);
  }

  /** A member's replica hash after a checked step: compared with the coordinator's once both are there (replica-checks.ts). */
  replicaHash(id: string, h: ReplicaHash): void {
    this.checks.theirs(id, h.step, h.hash);
  }

  /** Whether the replicas are to be checked after step `step` (the engine then reports its own hash with appliedHash). */
  isChecked(step: number): boolean {
    return this.checks.isChecked(step);
  }

  /** The coordinator's replica hash after a checked step (the trainer has applied it). */
  appliedHash(step: number, hash: string): void {
    this.checks.mine(step, hash);
  }

  private readonly checks: ReplicaChecks;

  // ---- internals

  /**
   * A member lost after the last step's sum was whole: the others may still
   * wait for its slice of that step (its frames died with it); they get the
   * coordinator's copy.
   */
  private pushSliceOf(id: string): void {
    const l = this.last;
    const plan = this.lastPlan;
    const ids = this.lastIds;
    if (l === null || plan === null || ids === null) return;
    const at = ids.indexOf(id);
    const slice = at < 0 ? -1 : plan.contributors[at].slice;
    if (slice < 0) return;
    const c = plan.contributors[at];
    const half = this.o.wire === 'bf16' ? Math.max(0, Math.min(c.to, this.o.numTrainable) - c.from) : 0;
    for (const other of ids) {
      const m = this.members.get(other);
      if (m === undefined || m.next !== l.step + 1) continue;
      this.o.io.send(other, { type: 'reduced', step: l.step, attempt: l.attempt, slice, pack: { vectors: 1, length: c.to - c.from, half }, sums: l.sum.slice(c.from, c.to) });
    }
  }

  /** The members of the last whole step, in contributor order. */
  private lastIds: string[] | null = null;

  /** The plan of the last whole step. */
  private lastPlan: CollectivePlan | null = null;

  private attempt(job: StepJob, number: number, resolve: (sum: Float32Array) => void, reject: (err: Error) => void): void {
    const ready = [...this.members.values()].filter((m) => m.next === job.step);
    if (ready.length < this.minMembers) {
      reject(new CollectiveFallback(`step ${job.step + 1}: ${ready.length} member${ready.length === 1 ? '' : 's'} in sync, the collective needs ${this.minMembers}`));
      return;
    }
    const known = ready.filter((m) => !Number.isNaN(m.speed));
    const mean = known.length === 0 ? 1 : known.reduce((s, m) => s + m.speed, 0) / known.length;
    const cut = alignedSplit(0, job.k, ready.map((m) => (Number.isNaN(m.speed) ? mean : m.speed)), CUT_TOLERANCE);
    const bySlot = new Map(cut.map((r) => [r.slot, r]));
    let at = 0;
    const contributors: ContributorRef[] = ready.map((m, i) => {
      const end = bySlot.get(i)?.end ?? at;
      const c = { id: m.id, address: m.address, start: at, end };
      at = end;
      return c;
    });
    const plan = planCollective(job.k, this.o.gradLen, contributors.map((c) => ({ start: c.start, end: c.end, owner: true })));
    const a: Attempt = {
      job, number, ids: ready.map((m) => m.id), plan, sum: new Float32Array(this.o.gradLen), have: plan.owners.map(() => false),
      computed: new Set(), startedAt: this.o.clock.now(), computedAt: NaN, resolve, reject, timer: null, settled: false,
    };
    this.current = a;
    const check = this.isChecked(job.step);
    this.checks.expect(job.step);
    const [r0] = rowsOf({ rows: job.rows, k: job.k, start: 0, end: job.k });
    ready.forEach((m, i) => {
      const c = contributors[i];
      const [s, e] = c.end > c.start ? rowsOf({ rows: job.rows, k: job.k, start: c.start, end: c.end }) : [0, 0];
      const l = this.last;
      const commit = l !== null && l.step === job.step - 1 && m.committedThrough < l.step ? { step: l.step, attempt: l.attempt, hash: l.hash, lr: l.lr } : undefined;
      if (commit !== undefined) m.committedThrough = commit.step;
      const f = number === 1 ? faultFor(this.o.chaos ?? [], job.step + 1, i) : undefined;
      const fault = f === undefined ? undefined : { kind: f.kind, ...(f.ms === undefined ? {} : { ms: f.ms }), ...(f.index === undefined ? {} : { index: f.index }) };
      this.o.io.send(m.id, {
        type: 'order', step: job.step, attempt: number, version: job.step, k: job.k, rows: job.rows, contributors, you: i,
        indices: Array.from(job.indices.subarray(s - r0, e - r0)), wire: this.o.wire, checkReplica: check,
        ...(commit === undefined ? {} : { commit }),
        ...(fault === undefined ? {} : { fault }),
      });
    });
    if (this.o.stepTimeoutMs > 0) a.timer = this.o.clock.setTimer(() => this.inspect(a), this.o.stepTimeoutMs);
  }

  private rowsOf(a: Attempt, i: number): number {
    const c = a.plan.contributors[i];
    if (c.end <= c.start) return 0;
    const [s, e] = rowsOf({ rows: a.job.rows, k: a.job.k, start: c.start, end: c.end });
    return e - s;
  }

  /** The sum is whole: the commit of the step; members move on to the next. */
  private whole(a: Attempt): void {
    a.settled = true;
    a.timer?.cancel();
    const hash = this.o.io.hash(a.sum);
    const now = this.o.clock.now();
    const computed = Number.isNaN(a.computedAt) ? now : a.computedAt;
    this.timing.steps++;
    this.timing.computeMs += computed - a.startedAt;
    this.timing.exchangeMs += now - computed;
    this.last = { step: a.job.step, attempt: a.number, hash, lr: a.job.lr, sum: a.sum };
    this.lastIds = a.ids;
    this.lastPlan = a.plan;
    for (const id of a.ids) {
      const m = this.members.get(id);
      if (m !== undefined) m.next = a.job.step + 1;
    }
    a.resolve(a.sum.slice());
  }

  /** The stall inspector: the members that have not said computed, else the owners whose slice is missing. */
  private inspect(a: Attempt): void {
    a.timer = null;
    if (a.settled) return;
    const silent = a.ids.filter((id) => !a.computed.has(id));
    const missing = a.plan.owners.flatMap((o, s) => (a.have[s] ? [] : [a.ids[o]]));
    const culprits = silent.length > 0 ? silent : missing;
    this.o.io.log(`step ${a.job.step + 1}: stalled: after ${this.o.stepTimeoutMs} ms, ` +
      (silent.length > 0 ? `${silent.join(', ')} had not computed their micro-shards` : `the slices of ${missing.join(', ')} had not come`) +
      `; the step runs again without ${culprits.length === 1 ? 'it' : 'them'}`);
    for (const id of culprits) {
      this.members.delete(id);
      this.o.io.resync(id, `stalled in step ${a.job.step + 1}`);
    }
    this.redo(a, culprits, 'stalled');
  }

  private redo(a: Attempt, lost: string[], why: string): void {
    a.settled = true;
    a.timer?.cancel();
    this.o.io.log(`step ${a.job.step + 1}: attempt ${a.number} lost ${lost.join(', ')} (${why}); attempt ${a.number + 1} with the others`);
    this.attempt(a.job, a.number + 1, a.resolve, a.reject);
  }

  private offense(id: string, reason: string): string {
    this.o.io.drop(id, reason);
    return reason;
  }
}
