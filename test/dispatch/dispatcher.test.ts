// The dispatcher over an in-memory transport and a fake clock: every worker
// here is a RangeWorker (the real compute of src/train/range.ts) that answers
// only when the test says so, so joins, leaves, stalls, late and bad answers
// happen exactly when the test wants them. No sleeps, no threads, no sockets.
import { describe, expect, it } from 'vitest';
import { getLoss } from '../../src/losses/index.js';
import { alignedBlocks, nodeKey } from '../../src/reduce/tree.js';
import { computeNode } from '../../src/train/batch.js';
import { createRangeWorker, rowsOf, type RangeWorker } from '../../src/train/range.js';
import { gradLength } from '../../src/train/step.js';
import { parseChaos } from '../../src/dispatch/chaos.js';
import { Dispatcher, type DispatcherOptions, type RangeJob, type RangeOrder, type WorkerLink } from '../../src/dispatch/dispatcher.js';
import { isChecked, undetectedProbability } from '../../src/dispatch/verification.js';
import { createDispatchEngine } from '../../coordinator/engines/dispatch-engine.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { BATCH, batchIndices, bits, dataset, F, K, LOSS, model, N, nudge, reference, SEED, SPEC } from '../helpers/synthetic.js';
import { createReferee } from '../../src/dispatch/referee.js';

const loss = getLoss(LOSS);
const DATA = dataset();
const REF = reference(4);

/** A worker of the in-memory transport: it holds its orders until the test lets it answer. */
class FakeWorker implements WorkerLink {
  readonly orders: RangeOrder[] = [];
  readonly drops: string[] = [];
  readonly quarantines: string[] = [];
  /** Every order it was ever given. */
  readonly history: RangeOrder[] = [];
  private readonly compute: RangeWorker;
  constructor(readonly info: WorkerLink['info'], private readonly cluster: Cluster) {
    this.compute = createRangeWorker(model(), loss, SEED, { x: DATA.x, y: DATA.y, n: N, xSize: F, ySize: 1 }, BATCH);
  }
  send(order: RangeOrder): void {
    this.orders.push(order);
    this.history.push(order);
  }
  drop(reason: string): void {
    this.drops.push(reason);
    this.cluster.dispatcher.leave(this.info.id, `dropped: ${reason}`);
  }
  quarantine(reason: string): void {
    this.quarantines.push(reason);
    this.cluster.dispatcher.leave(this.info.id, `quarantined: ${reason}`);
  }
  /** The true answer to an order: the range's block sums with the board's weights. */
  solve(order: RangeOrder): { blocks: { level: number; index: number }[]; sums: Float32Array } {
    this.compute.setWeights(order.version, this.cluster.board.params);
    const g = this.compute.gradLen;
    const blocks = alignedBlocks(order.k, order.start, order.end);
    const sums = new Float32Array(blocks.length * g);
    this.compute.compute(order, (b, _node, sum) => sums.set(sum, b * g));
    return { blocks: blocks.map((b) => ({ level: b.level, index: b.index })), sums };
  }
  /** Answers its oldest open order (optionally tampered with). */
  answer(tamper?: (a: { taskId: number; version: number; blocks: { level: number; index: number }[]; sums: Float32Array }) => void): RangeOrder {
    const order = this.orders.shift();
    if (order === undefined) throw new Error(`${this.info.id} holds no order`);
    const a = { taskId: order.taskId, version: order.version, ...this.solve(order) };
    tamper?.(a);
    this.cluster.dispatcher.answer(this.info.id, { ...a, computeMs: 1 });
    return order;
  }
}

class Cluster {
  readonly clock = new FakeClock();
  readonly log: string[] = [];
  readonly master = model();
  readonly board: WeightsBoard = { version: 0, params: this.master.params };
  readonly dispatcher: Dispatcher;
  readonly workers = new Map<string, FakeWorker>();
  /** The coordinator's own compute, as the referee of checked ranges. */
  readonly refereeCalls: RangeJob[] = [];
  constructor(opts: Partial<DispatcherOptions> = {}) {
    const referee = createReferee({ model: SPEC, loss: LOSS, seed: SEED, train: DATA, maxBatch: BATCH, board: this.board });
    this.dispatcher = new Dispatcher({
      gradLen: gradLength(this.master), stepTimeoutMs: 0, clock: this.clock, log: (line) => this.log.push(line),
      referee: (job) => { this.refereeCalls.push(job); return referee(job); },
      ...opts,
    });
  }
  add(id: string, kind: 'thread' | 'process' | 'tab' = 'process', threads = 1): FakeWorker {
    const w = new FakeWorker({ id, kind, host: `host-${id}`, threads }, this);
    this.workers.set(id, w);
    this.dispatcher.join(w);
    return w;
  }
  /** Starts step s over the whole batch; resolves with its root sum. */
  step(s: number): { done: Promise<Float32Array>; settled: () => boolean } {
    const out = new Float32Array(gradLength(this.master));
    this.board.version++;
    let settled = false;
    const done = this.dispatcher.computeRange(
      { step: s, version: this.board.version, k: K, rows: BATCH, start: 0, end: K, indices: batchIndices(s) }, () => out,
    ).then(() => out).finally(() => { settled = true; });
    return { done, settled: () => settled };
  }
  /** Lets every worker answer everything it holds, in the order given, until nothing is open. */
  drain(order: string[] = [...this.workers.keys()]): void {
    for (let busy = true; busy;) {
      busy = false;
      for (const id of order) {
        const w = this.workers.get(id)!;
        while (w.orders.length > 0) { w.answer(); busy = true; }
      }
    }
  }
  text(): string {
    return this.log.join('\n');
  }
}

async function flush(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
}

describe('Dispatcher (in-memory transport, fake clock)', () => {
  it('gives the single-thread sums bit for bit for 1, 2, 3 and 5 workers, whatever order the answers come in', async () => {
    for (const n of [1, 2, 3, 5]) {
      const c = new Cluster();
      const ids = Array.from({ length: n }, (_, i) => `w${i}`);
      for (const id of ids) c.add(id);
      for (let s = 0; s < 4; s++) {
        const st = c.step(s);
        c.drain(s % 2 === 0 ? ids : [...ids].reverse());
        const sum = await st.done;
        expect(bits(sum), `${n} workers, step ${s + 1}`).toEqual(bits(REF[s]));
        nudge(c.master, sum);
      }
      expect(c.dispatcher.summaries().reduce((t, w) => t + w.microShards, 0)).toBe(4 * K);
    }
  });

  it('computes a sub-range as its aligned blocks, combined in the tree order (a worker that reduces locally)', async () => {
    const c = new Cluster();
    c.add('a'); c.add('b'); c.add('c');
    const job = { step: 0, version: ++c.board.version, k: K, rows: BATCH, start: 1, end: 7, indices: new Uint32Array(0) };
    const [r0, r1] = rowsOf(job);
    const indices = batchIndices(0).subarray(r0, r1);
    const blocks = alignedBlocks(K, 1, 7);
    const outs = blocks.map(() => new Float32Array(gradLength(c.master)));
    const done = c.dispatcher.computeRange({ ...job, indices }, (b) => outs[b]);
    c.drain();
    await done;
    // Direct: each aligned block of [1, 7) computed whole in one thread.
    const m = model();
    const x = new Float32Array(BATCH * F), y = new Float32Array(BATCH);
    batchIndices(0).forEach((i, r) => { x.set(DATA.x.subarray(i * F, (i + 1) * F), r * F); y[r] = DATA.y[i]; });
    blocks.forEach((node, b) => {
      const want = new Float32Array(gradLength(m));
      computeNode(m, loss, { x, y, rows: BATCH, xSize: F, ySize: 1 }, K, { seed: SEED, step: 0 }, node.level, node.index, want);
      expect(bits(outs[b]), nodeKey(node.level, node.index)).toEqual(bits(want));
    });
  });

  it('waits for a worker when none is connected, and starts as soon as one joins', async () => {
    const c = new Cluster();
    const st = c.step(0);
    expect(c.text()).toMatch(/step 1: waiting for a worker/);
    await flush();
    expect(st.settled()).toBe(false);
    const joined = c.dispatcher.whenWorkers(1);
    c.add('late');
    await joined;
    c.drain();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
  });

  it('a worker that joins mid-step takes over the range of one that leaves; a worker that leaves idle is just gone', async () => {
    const c = new Cluster();
    const a = c.add('a');
    const b = c.add('b');
    const st = c.step(0);
    expect(a.orders).toHaveLength(1);
    expect(b.orders).toHaveLength(1);
    b.answer();
    c.dispatcher.leave('a', 'connection closed');
    // b is idle: it gets a's range at once.
    expect(b.orders).toHaveLength(1);
    expect(c.text()).toMatch(/step 1: worker a \(process on host-a\) \(micro-shards 0-\d\) left: connection closed; reassigning \(attempt 2\)/);
    c.add('c');
    c.dispatcher.leave('c', 'closed before doing anything');
    b.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    expect(c.dispatcher.summaries().map((w) => [w.id, w.state])).toEqual([['a', 'gone'], ['c', 'gone'], ['b', 'idle']]);
  });

  it('the stall inspector reassigns a range after stepTimeoutMs, takes the first answer and ignores the late one', async () => {
    const c = new Cluster({ stepTimeoutMs: 1000 });
    const a = c.add('a');
    const b = c.add('b');
    const st = c.step(0);
    b.answer();
    c.clock.advance(999);
    expect(b.orders).toHaveLength(0);
    c.clock.advance(1);
    expect(c.text()).toMatch(/step 1: stalled: 1 of 2 ranges missing after 1000 ms: worker a \(process on host-a\) \(micro-shards 0-\d, attempt 1\); reassigning/);
    expect(b.orders).toHaveLength(1);
    b.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    a.answer(); // wakes up at last
    expect(c.text()).toMatch(/step 1: ignored a late answer from worker a .*task \d+\)/);
    expect(a.drops).toEqual([]);
  });

  it('a stalled worker that answers before its replacement wins; the replacement is late', async () => {
    const c = new Cluster({ stepTimeoutMs: 1000 });
    const a = c.add('a');
    const b = c.add('b');
    const st = c.step(0);
    b.answer();
    c.clock.advance(1000);
    a.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    b.answer();
    expect(c.text()).toMatch(/ignored a late answer from worker b/);
  });

  it('drops a process that never answers: twice the step timeout after its task, in a later step', async () => {
    const c = new Cluster({ stepTimeoutMs: 1000 });
    const mute = c.add('mute');
    const b = c.add('b');
    let st = c.step(0);
    b.answer();
    c.clock.advance(1000); // reassigned to b
    b.answer();
    nudge(c.master, await st.done);
    st = c.step(1); // mute is still busy: b gets the whole batch
    expect(mute.orders).toHaveLength(1);
    expect(b.orders[0]).toMatchObject({ start: 0, end: K });
    c.clock.advance(999);
    expect(mute.drops).toEqual([]);
    c.clock.advance(1);
    expect(mute.drops[0]).toMatch(/never answered task \d+ \(micro-shards 0-\d\) in 2000 ms, twice the step timeout/);
    expect(c.dispatcher.liveCount()).toBe(1);
    b.answer();
    expect(bits(await st.done)).toEqual(bits(REF[1]));
  });

  it('without a step timeout it only warns, every stallWarnMs, naming the missing worker', async () => {
    const c = new Cluster({ stepTimeoutMs: 0, stallWarnMs: 250 });
    const a = c.add('a');
    c.add('b');
    const st = c.step(0);
    c.workers.get('b')!.answer();
    c.clock.advance(600);
    expect(c.log.filter((l) => /still waiting \(no step timeout, so not reassigning\)/.test(l))).toHaveLength(2);
    expect(c.text()).toMatch(/step 1: stalled: 1 of 2 ranges missing after 250 ms: worker a .*micro-shards 0-\d, attempt 1/);
    a.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    expect(c.clock.timers).toBe(0);
  });

  it('drops a worker whose answer is wrong in any way, reassigns its range, and the sums do not change', async () => {
    const tampers: [string, (a: { taskId: number; version: number; blocks: { level: number; index: number }[]; sums: Float32Array }) => void, RegExp][] = [
      ['stale version', (a) => { a.version -= 1; }, /computed with weights version \d+, the step's is \d+/],
      ['wrong blocks', (a) => { a.blocks = [{ level: 0, index: 0 }]; }, /blocks 0:0, expected/],
      ['short sums', (a) => { a.sums = a.sums.subarray(1); }, /\d+ floats, \d+ blocks? of \d+ need/],
      ['sample count', (a) => { a.sums[a.sums.length - 1] += 1; }, /counts \d+ samples, its micro-shards hold/],
      ['NaN', (a) => { a.sums[3] = NaN; }, /with NaN or Infinity/],
      ['Infinity', (a) => { a.sums[0] = -Infinity; }, /with NaN or Infinity/],
    ];
    for (const [what, tamper, message] of tampers) {
      const c = new Cluster();
      const evil = c.add('evil');
      const good = c.add('good');
      const st = c.step(0);
      good.answer();
      evil.answer(tamper);
      expect(evil.drops, what).toHaveLength(1);
      expect(c.text(), what).toMatch(new RegExp(`dropping worker evil .*${message.source}`));
      c.drain(['good']);
      expect(bits(await st.done), what).toEqual(bits(REF[0]));
      expect(c.dispatcher.liveCount()).toBe(1);
    }
  });

  it('drops a worker that answers a task it was not given, or another worker\'s task', async () => {
    const c = new Cluster();
    const a = c.add('a');
    const b = c.add('b');
    const st = c.step(0);
    const forged = { ...b.solve(b.orders[0]), taskId: 999_999, version: c.board.version, computeMs: 1 };
    c.dispatcher.answer('a', forged);
    expect(a.drops[0]).toMatch(/answered task 999999, which it was not given/);
    const steal = { ...b.solve(b.orders[0]), taskId: b.orders[0].taskId, version: c.board.version, computeMs: 1 };
    const intruder = c.add('intruder');
    c.dispatcher.answer('intruder', steal);
    expect(intruder.drops[0]).toMatch(/which it was not given/);
    c.drain(['b', 'a']);
    expect(bits(await st.done)).toEqual(bits(REF[0]));
  });

  it('takes NaN when two workers agree on it (the model diverged: the trainer says so)', async () => {
    const c = new Cluster();
    const a = c.add('a');
    const b = c.add('b');
    const st = c.step(0);
    b.answer();
    a.answer((x) => { x.sums[0] = NaN; });
    expect(a.drops).toHaveLength(1);
    b.answer((x) => { x.sums[0] = NaN; });
    const sum = await st.done;
    expect(Number.isNaN(sum[0])).toBe(true);
  });

  it('gives up on a step after maxAttempts failures of one range, naming the micro-shards and the causes', async () => {
    const c = new Cluster({ maxAttempts: 3 });
    c.add('a'); c.add('b');
    const st = c.step(0);
    const a = c.workers.get('a')!;
    for (let i = 0; i < 3; i++) {
      const w = [...c.workers.values()].find((x) => x.orders.some((o) => o.start === 0))!;
      const o = w.orders.splice(w.orders.findIndex((x) => x.start === 0), 1)[0];
      c.dispatcher.failure(w.info.id, o.taskId, `boom ${i}`);
    }
    await expect(st.done).rejects.toMatchObject({
      code: 'DPT_ERR_WORKER', message: expect.stringMatching(/step 1: micro-shards 0-\d failed 3 times \(worker \w .*failed: boom 0; .*boom 2\); giving up/),
    });
    expect(a.drops).toEqual([]);
  });

  it('cuts ranges by measured speed: a worker three times as fast gets about three times the micro-shards', async () => {
    const c = new Cluster();
    const fast = c.add('fast');
    const slow = c.add('slow');
    for (let s = 0; s < 3; s++) {
      const st = c.step(s);
      c.clock.advance(10);
      fast.answer();
      c.clock.advance(20);
      slow.answer();
      nudge(c.master, await st.done);
    }
    const st = c.step(3);
    const share = (w: FakeWorker) => w.orders[0].end - w.orders[0].start;
    expect(share(fast)).toBeGreaterThan(share(slow));
    c.drain();
    expect(bits(await st.done)).toEqual(bits(REF[3]));
  });

  it('orders a --chaos fault on the first attempt of the named range only', async () => {
    const c = new Cluster({ chaos: parseChaos('throw:worker=1,step=2') });
    c.add('a'); c.add('b');
    let st = c.step(0);
    expect([...c.workers.values()].flatMap((w) => w.orders.map((o) => o.fault))).toEqual([undefined, undefined]);
    c.drain();
    nudge(c.master, await st.done);
    st = c.step(1);
    const b = c.workers.get('b')!;
    expect(b.orders[0].fault).toEqual({ kind: 'throw' });
    c.dispatcher.failure('b', b.orders.shift()!.taskId, 'chaos');
    const retry = [...c.workers.values()].flatMap((w) => w.orders);
    expect(retry.every((o) => o.fault === undefined)).toBe(true);
    c.drain();
    await st.done;
  });

  it('a dispatch engine publishes a new weights version per step and reports its workers', async () => {
    const c = new Cluster();
    c.add('a', 'thread');
    c.add('b', 'process', 4);
    const engine = createDispatchEngine(c.dispatcher, c.board, async () => {});
    const sum = new Float32Array(gradLength(c.master));
    const before = c.board.version;
    const p = engine.batchGradient({ epoch: 0, step: 0, indices: batchIndices(0), microShards: K }, sum);
    expect(c.board.version).toBe(before + 1);
    // Threads count for one share each, a process with 4 threads for 4 before any speed is known.
    const b = c.workers.get('b')!;
    expect(b.orders[0].end - b.orders[0].start).toBeGreaterThan(c.workers.get('a')!.orders[0].end - c.workers.get('a')!.orders[0].start);
    c.drain();
    await p;
    expect(bits(sum)).toEqual(bits(REF[0]));
    expect(engine.workers).toBe(2);
    await engine.close();
    await expect(engine.batchGradient({ epoch: 0, step: 1, indices: batchIndices(1), microShards: K }, sum)).rejects.toThrow(/closed/);
  });
});

describe('stragglers: speculative execution (fake clock)', () => {
  /** Two workers whose speeds are known after one step where both took 10 ms. */
  async function warmed(slowKind: 'tab' | 'thread', opts: Partial<DispatcherOptions> = {}) {
    const c = new Cluster({ stepTimeoutMs: 60_000, speculateFactor: 3, speculateSlackMs: 100, ...opts });
    const fast = c.add('fast');
    const slow = c.add('slow', slowKind);
    const st = c.step(0);
    c.clock.advance(10);
    fast.answer();
    slow.answer();
    nudge(c.master, await st.done);
    return { c, fast, slow };
  }

  it('duplicates a straggler\'s range to an idle worker once it runs well past its expected time; the first answer wins', async () => {
    const { c, fast, slow } = await warmed('tab');
    const st = c.step(1);
    c.clock.advance(10);
    fast.answer();
    c.clock.advance(30);
    expect(fast.orders, 'not yet: 40 ms is within 3 x expected + 100 ms').toHaveLength(0);
    c.clock.advance(200);
    expect(c.text()).toMatch(/step 2: worker slow \(tab on host-slow\) is a straggler: micro-shards \d-\d open for \d+ ms, expected \d+ ms at its \d+ samples\/s; duplicating them to worker fast \(process on host-fast\) \(the first answer wins\)/);
    expect(fast.orders).toHaveLength(1);
    expect(fast.orders[0]).toMatchObject({ start: slow.orders[0].start, end: slow.orders[0].end });
    fast.answer();
    expect(bits(await st.done)).toEqual(bits(REF[1]));
    slow.answer(); // it finishes at last: late by design, no fault of its own, not worth a log line
    expect(c.text()).not.toMatch(/late answer/);
    expect(slow.drops).toEqual([]);
    expect(c.dispatcher.stats().speculated).toBe(1);
  });

  it('the straggler wins if it answers first; nothing is duplicated while no worker is idle, nor for threads, nor without a step timeout, nor for a --chaos fault', async () => {
    const { c, fast, slow } = await warmed('tab');
    let st = c.step(1);
    c.clock.advance(1000); // both busy: nobody to duplicate to
    expect(c.dispatcher.stats().speculated).toBe(0);
    fast.answer();
    c.clock.advance(1000);
    expect(fast.orders).toHaveLength(1); // the duplicate
    slow.answer();
    expect(bits(await st.done)).toEqual(bits(REF[1]));
    fast.answer();
    expect(fast.drops).toEqual([]);
    expect(c.text()).not.toMatch(/late answer/);

    const t = await warmed('thread');
    st = t.c.step(1);
    t.fast.answer();
    t.c.clock.advance(10_000);
    expect(t.fast.orders).toHaveLength(0);
    t.slow.answer();
    expect(bits(await st.done)).toEqual(bits(REF[1]));

    for (const opts of [{ stepTimeoutMs: 0 }, { chaos: parseChaos('stall:worker=1,step=2,ms=9999') }]) {
      const w = await warmed('tab', opts);
      st = w.c.step(1);
      w.fast.answer();
      w.c.clock.advance(10_000);
      expect(w.fast.orders, JSON.stringify(opts)).toHaveLength(0);
      w.slow.answer();
      expect(bits(await st.done)).toEqual(bits(REF[1]));
    }
  });
});

describe('--verify-fraction: checking untrusted answers (fake clock)', () => {
  const tamper = (a: { sums: Float32Array }) => { a.sums[5] += 0.25; };

  it('with fraction 1 every range of a tab is computed twice, by different workers, and taken when the bits agree', async () => {
    const c = new Cluster({ verifyFraction: 1 });
    const a = c.add('a', 'tab');
    const b = c.add('b', 'tab');
    for (let s = 0; s < 3; s++) {
      const st = c.step(s);
      c.drain();
      const sum = await st.done;
      expect(bits(sum)).toEqual(bits(REF[s]));
      nudge(c.master, sum);
      const ranges = (w: FakeWorker) => w.history.filter((o) => o.step === s).map((o) => `${o.start}-${o.end}`).sort();
      expect(ranges(a), `step ${s + 1}`).toEqual(ranges(b));
    }
    const stats = c.dispatcher.stats();
    expect(stats.verified).toBe(6);
    expect(stats.disputes).toBe(0);
    expect(c.refereeCalls).toHaveLength(0);
    expect(c.dispatcher.summaries().map((w) => w.verified)).toEqual([3, 3]);
  });

  it('a worker whose bits differ is quarantined, the coordinator recomputes the disputed range, and the sums do not change', async () => {
    const c = new Cluster({ verifyFraction: 1 });
    const liar = c.add('liar', 'tab');
    const honest = c.add('honest', 'tab');
    const st = c.step(0);
    liar.answer(tamper);
    honest.answer();
    // Each now checks the other's range.
    expect(honest.orders[0]).toMatchObject({ start: liar.history[0].start, end: liar.history[0].end });
    honest.answer();
    expect(liar.quarantines).toHaveLength(1);
    expect(liar.quarantines[0]).toMatch(/its sums for micro-shards \d-\d of step 1 differ from the coordinator's recomputation \(element 5 of block 0\)/);
    expect(c.text()).toMatch(/step 1: worker liar \(tab on host-liar\) and worker honest \(tab on host-honest\) disagree on micro-shards \d-\d \(first at element 5 of block 0\); the coordinator recomputes them/);
    expect(c.text()).toMatch(/quarantining worker liar \(tab on host-liar\): .*; it is disconnected and refused for the rest of the run/);
    // The honest range, left unchecked by the liar's departure, is checked by the coordinator.
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    expect(c.refereeCalls).toHaveLength(2);
    expect(c.dispatcher.summaries().find((w) => w.id === 'liar')!.state).toBe('quarantined');
    expect(c.dispatcher.stats()).toMatchObject({ disputes: 1, quarantined: 1 });
    expect(honest.drops).toEqual([]);
  });

  it('a worker alone is checked by the coordinator itself, which says so once and catches a lie', async () => {
    const c = new Cluster({ verifyFraction: 1 });
    const solo = c.add('solo', 'process');
    let st = c.step(0);
    solo.answer();
    const sum = await st.done;
    expect(bits(sum)).toEqual(bits(REF[0]));
    nudge(c.master, sum);
    st = c.step(1);
    solo.answer(tamper);
    expect(bits(await st.done)).toEqual(bits(REF[1]));
    expect(c.log.filter((l) => /no other worker is connected to check worker solo .*; the coordinator checks its ranges itself/.test(l))).toHaveLength(1);
    expect(solo.quarantines).toHaveLength(1);
  });

  it('threads are trusted: their answers are taken unchecked, and an idle thread is the first choice to check a tab', async () => {
    const c = new Cluster({ verifyFraction: 1 });
    const t = c.add('t', 'thread');
    const tab = c.add('tab1', 'tab');
    const st = c.step(0);
    t.answer();
    expect(t.orders).toHaveLength(0);
    tab.answer();
    expect(t.orders).toHaveLength(1);
    expect(t.orders[0]).toMatchObject({ start: tab.history[0].start, end: tab.history[0].end });
    t.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
    expect(c.dispatcher.stats().verified).toBe(1);
  });

  it('a caught liar\'s unchecked answers of the same step are recomputed too', async () => {
    // A key that leaves the first range [0, 4) unchecked and checks the second [4, 7).
    let key = 0;
    while (isChecked(0.5, key, 0, 0, 4) || !isChecked(0.5, key, 0, 4, 7)) key++;
    const c = new Cluster({ verifyFraction: 0.5, verifyKey: key });
    const liar = c.add('liar', 'tab');
    const honest = c.add('honest', 'tab');
    const st = c.step(0);
    expect(liar.orders[0]).toMatchObject({ start: 0, end: 4 });
    liar.answer(tamper); // unchecked: taken for now
    honest.answer(); // checked: the idle liar is asked to check it
    expect(liar.orders[0]).toMatchObject({ start: 4, end: 7 });
    liar.answer(tamper);
    expect(liar.quarantines).toHaveLength(1);
    expect(honest.orders[0]).toMatchObject({ start: 0, end: 4 });
    honest.answer();
    expect(bits(await st.done)).toEqual(bits(REF[0]));
  });

  it('the choice of checked ranges: never at 0, always at 1, about F otherwise, the same for the same key', () => {
    let checked = 0;
    for (let step = 0; step < 4000; step++) {
      expect(isChecked(0, 7, step, 0, 3)).toBe(false);
      expect(isChecked(1, 7, step, 0, 3)).toBe(true);
      if (isChecked(0.25, 7, step, 0, 3)) checked++;
      expect(isChecked(0.25, 7, step, 0, 3)).toBe(isChecked(0.25, 7, step, 0, 3));
    }
    expect(checked / 4000).toBeGreaterThan(0.22);
    expect(checked / 4000).toBeLessThan(0.28);
    expect(undetectedProbability(0.1, 20)).toBeCloseTo(0.9 ** 20, 12);
    expect(() => new Dispatcher({ gradLen: 4, stepTimeoutMs: 0, verifyFraction: 0.5 })).toThrow(/needs a referee/);
  });
});
