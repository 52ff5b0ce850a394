// An in-memory collective: a Conductor and W Members over links that
// deliver each message through the codec (encode, then the one decode, as
// the sockets will), FIFO per link and in a seeded random order across
// links; every member computes with the real range code on a replica of its
// own and applies commits with the real applyStep. Tests drive it step by
// step and compare every replica, bit for bit, with a single-thread run.
import { createHash } from 'node:crypto';
import { encode, decode } from '../../src/protocol/codec.js';
import type { Order } from '../../src/protocol/collective-messages.js';
import type { Message } from '../../src/protocol/messages.js';
import { Conductor, type StepJob } from '../../src/collective/conductor.js';
import { Member, type ToCoordinator } from '../../src/collective/member.js';
import { nodeRounding, type GradWire } from '../../src/reduce/bf16.js';
import { getLoss } from '../../src/losses/index.js';
import type { Model } from '../../src/model/model.js';
import { createSgdState, type SgdConfig, type SgdState } from '../../src/optim/sgd.js';
import { uniform } from '../../src/random/counter.js';
import { createRangeWorker, type RangeWorker } from '../../src/train/range.js';
import { applyStep, gradLength, planStep, type StepPlan } from '../../src/train/step.js';
import { FakeClock } from './fake-clock.js';
import { BATCH, dataset, F, LOSS, model, SEED } from './synthetic.js';

export const SGD: SgdConfig = { lr: 0.1, momentum: 0.9, nesterov: false, weightDecay: 0 };
const LIMITS = { maxFrameBytes: 1 << 26 };

export interface Replica {
  model: Model;
  plan: StepPlan;
  state: SgdState;
}

export function replica(): Replica {
  const m = model();
  return { model: m, plan: planStep(m), state: createSgdState(SGD, m.numTrainable) };
}

/** The whole batch's sum on one thread (the star's and --workers 0's result), nodes rounded as the wire says. */
export function batchSum(params: Float32Array, wire: GradWire, j: StepJob): Float32Array {
  const r = replica();
  r.model.params.set(params);
  const data = dataset();
  const worker = createRangeWorker(r.model, getLoss(LOSS), SEED, { x: data.x, y: data.y, n: data.n, xSize: F, ySize: 1 }, BATCH);
  let out = new Float32Array(0);
  worker.compute({ step: j.step, k: j.k, rows: j.rows, start: 0, end: j.k, indices: j.indices }, (_b, _n, sum) => { out = sum.slice(); }, nodeRounding(wire, r.model.numTrainable));
  return out;
}

export function sha(floats: Float32Array): string {
  return createHash('sha256').update(new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength)).digest('hex');
}

export function replicaSha(r: Replica): string {
  return createHash('sha256').update(new Uint8Array(r.model.params.buffer, r.model.params.byteOffset, r.model.params.byteLength))
    .update(new Uint8Array(r.state.velocity.buffer, r.state.velocity.byteOffset, r.state.velocity.byteLength)).digest('hex');
}

interface Node {
  id: string;
  member: Member;
  replica: Replica;
  worker: RangeWorker;
  gone: boolean;
}

type Envelope = { from: string; to: string; frame: Uint8Array; sender: 'conductor' | 'member' | 'peer' };

export class Lan {
  readonly clock = new FakeClock();
  readonly conductor: Conductor;
  readonly coordinator = replica();
  readonly nodes = new Map<string, Node>();
  readonly log: string[] = [];
  readonly dropped: string[] = [];
  readonly resynced: string[] = [];
  /** FIFO queues per link "from>to". */
  private readonly links = new Map<string, Envelope[]>();
  private readonly computeQueue: { id: string; order: Order }[] = [];
  private turn = 0;
  /** Members whose computations never finish (a stalled process). */
  readonly stalled = new Set<string>();
  /** A hook on every frame before it is delivered: return null to lose it, or other bytes. */
  tamper: ((e: Envelope, message: Message) => Uint8Array | null) | null = null;
  /** Frames this says to hold stay on their way until release() (a slow link). */
  hold: ((e: Envelope, message: Message) => boolean) | null = null;
  private readonly held: Envelope[] = [];

  constructor(readonly wire: GradWire, ids: string[], private readonly seed = 1, stepTimeoutMs = 0) {
    const gradLen = gradLength(this.coordinator.model);
    this.conductor = new Conductor({
      gradLen, numTrainable: this.coordinator.model.numTrainable, wire, clock: this.clock, stepTimeoutMs, checkEvery: 3,
      io: {
        send: (id, m) => this.post('coordinator', id, m, 'conductor'),
        drop: (id, reason) => { this.dropped.push(`${id}: ${reason}`); this.kill(id, reason); },
        hash: sha,
        resync: (id, reason) => { this.resynced.push(`${id}: ${reason}`); },
        log: (line) => this.log.push(line),
      },
    });
    for (const id of ids) this.add(id);
  }

  add(id: string, next = 0): void {
    const r = replica();
    // A joiner takes the coordinator's replica (the replica message's content).
    r.model.params.set(this.coordinator.model.params);
    r.state.velocity.set(this.coordinator.state.velocity);
    const data = dataset();
    const worker = createRangeWorker(r.model, getLoss(LOSS), SEED, { x: data.x, y: data.y, n: data.n, xSize: F, ySize: 1 }, BATCH);
    const node: Node = { id, replica: r, worker, gone: false, member: null as unknown as Member };
    node.member = new Member(id, gradLength(r.model), r.model.numTrainable, {
      compute: (order) => { if (!this.stalled.has(id)) this.computeQueue.push({ id, order }); },
      sendPeer: (peer, m) => this.post(id, peer, m, 'peer'),
      sendCoordinator: (m) => this.post(id, 'coordinator', m, 'member'),
      apply: (_step, lr, sum) => { applyStep(r.model, r.plan, sum, SGD, r.state, lr); },
      hash: sha,
      replicaHash: () => replicaSha(r),
      weightsHash: () => sha(r.model.params),
      later: (fn, ms) => this.clock.setTimer(fn, ms),
      log: (line) => this.log.push(`${id}: ${line}`),
    }, next - 1);
    this.nodes.set(id, node);
    this.conductor.in(id, `${id}:7071`, next);
  }

  /** The member's process dies: nothing more from or to it; the coordinator's transport notices. */
  kill(id: string, reason = 'killed'): void {
    const n = this.nodes.get(id);
    if (n === undefined || n.gone) return;
    n.gone = true;
    this.conductor.leave(id, reason);
  }

  private post(from: string, to: string, m: Message, sender: Envelope['sender']): void {
    const key = `${from}>${to}`;
    let q = this.links.get(key);
    if (q === undefined) this.links.set(key, q = []);
    q.push({ from, to, frame: encode(m), sender });
  }

  /** Runs one step to its end (as the engine would: the trainer applies the sum to the coordinator's replica). */
  async step(job: StepJob, onFallback: (job: StepJob) => Float32Array = (j) => batchSum(this.coordinator.model.params, this.wire, j)): Promise<'collective' | 'star'> {
    let result: Float32Array | null = null;
    let fallback = false;
    this.conductor.step({ ...job, weights: sha(this.coordinator.model.params) }).then((sum) => { result = sum; }, () => { fallback = true; });
    while (result === null && !fallback) {
      if (!this.deliverOne()) {
        // Nothing in flight: time passes (the stall inspector's timers), if anything waits on it.
        if (this.clock.timers === 0) throw new Error(`step ${job.step + 1}: nothing left to deliver; log: ${this.log.join(' | ')}`);
        this.clock.advance(1000);
      }
      await Promise.resolve(); // a microtask turn: the promise callbacks of the event just run
    }
    const star = fallback;
    const sum = star ? onFallback(job) : result!;
    if (star) this.conductor.commitStar(job.step, job.lr, sum);
    applyStep(this.coordinator.model, this.coordinator.plan, sum.slice(), SGD, this.coordinator.state, job.lr);
    if (this.conductor.isChecked(job.step)) this.conductor.appliedHash(job.step, replicaSha(this.coordinator));
    return star ? 'star' : 'collective';
  }

  /** Delivers the first `n` held frames (they are held no more). */
  release(n = this.held.length): void {
    const hold = this.hold;
    this.hold = null;
    for (const e of this.held.splice(0, n)) this.deliver(e);
    this.hold = hold;
  }

  /** Frames held now. */
  get holding(): number {
    return this.held.length;
  }

  /** Delivers what is in flight until nothing is (the end of a run). */
  drain(): void {
    while (this.deliverOne()) { /* go on */ }
  }

  /** One computation or one frame, picked at random among the links (FIFO within each). */
  deliverOne(): boolean {
    const ready = [...this.links.entries()].filter(([, q]) => q.length > 0);
    const choices = ready.length + (this.computeQueue.length > 0 ? 1 : 0);
    if (choices === 0) return false;
    const pick = Math.floor(uniform(this.seed, this.turn++) * choices);
    if (pick === ready.length) {
      const { id, order } = this.computeQueue.shift()!;
      this.compute(id, order);
      return true;
    }
    const e = ready[pick][1].shift()!;
    this.deliver(e);
    return true;
  }

  private compute(id: string, o: Order): void {
    const n = this.nodes.get(id)!;
    if (n.gone) return;
    const me = o.contributors[o.you];
    const G = gradLength(n.replica.model);
    const blocks: Float32Array[] = [];
    n.worker.compute({ step: o.step, k: o.k, rows: o.rows, start: me.start, end: me.end, indices: o.indices }, (_b, _node, sum) => blocks.push(sum.slice()),
      nodeRounding(o.wire, n.replica.model.numTrainable));
    const all = new Float32Array(blocks.length * G);
    blocks.forEach((b, i) => all.set(b, i * G));
    n.member.computed(o.step, o.attempt, all);
  }

  private deliver(e: Envelope): void {
    const from = this.nodes.get(e.from);
    const to = this.nodes.get(e.to);
    if (from?.gone === true || to?.gone === true) return;
    let frame: Uint8Array | null = e.frame;
    const message = decode(frame, e.sender, LIMITS);
    if (this.hold?.(e, message) === true) { this.held.push(e); return; }
    if (this.tamper !== null) {
      frame = this.tamper(e, message);
      if (frame === null) return;
    }
    const m = decode(frame, e.sender, LIMITS);
    if (e.to === 'coordinator') {
      const c = this.conductor;
      const t = m as ToCoordinator;
      if (t.type === 'computed') c.computed(e.from, t);
      else if (t.type === 'reduced') c.reduced(e.from, t);
      else if (t.type === 'peer-fault') c.peerFault(e.from, t);
      else if (t.type === 'need') c.need(e.from, t);
      else if (t.type === 'replica-hash') c.replicaHash(e.from, t);
      return;
    }
    const member = to!.member;
    let problem: string | null = null;
    if (m.type === 'order') problem = member.order(m);
    else if (m.type === 'commit') problem = member.commitAlone(m);
    else if (m.type === 'part') problem = member.part(e.from, m);
    else if (m.type === 'reduced') problem = member.reduced(e.from, m);
    if (problem !== null) this.log.push(`${e.to}: ${problem}`);
  }
}
