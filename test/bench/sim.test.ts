// The simulator's parts against figures worked out by hand: the event
// queue's order, processor sharing, a switch port's queue (incast), and the
// bytes the star (the real dispatcher) and the collective (the real
// schedule) move per step.
import { describe, expect, it } from 'vitest';
import { CpuPool } from '../../bench/sim/cpu.js';
import { EventQueue } from '../../bench/sim/events.js';
import { machine, type Workload } from '../../bench/sim/model.js';
import { Network } from '../../bench/sim/network.js';
import { simulateCollective } from '../../bench/sim/collective.js';
import { simulateStar } from '../../bench/sim/star.js';

const free = { rate: 1000, latencyMs: 0, msgMs: 0, byteMs: 0 };

/** leafMs: a micro-shard's compute; long against the transfers, the measured speeds are equal and the cuts aligned. */
function toy(k = 8, leafMs = 1): Workload {
  return {
    model: 'mlp', batch: 64, k, gradLen: 25_600, size: 25_598, numTrainable: 25_000,
    leafMs: () => leafMs, addMsPerFloat: 0, applyMsPerFloat: 0, roundMsPerFloat: 0,
  };
}

describe('the cluster simulator', () => {
  it('runs events in time order, ties in the order they were set, and skips cancelled ones', () => {
    const q = new EventQueue();
    const seen: string[] = [];
    q.setTimer(() => seen.push('b'), 2);
    q.setTimer(() => seen.push('a'), 1);
    q.setTimer(() => seen.push('c'), 2);
    q.setTimer(() => seen.push('x'), 1.5).cancel();
    q.run();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(q.now()).toBe(2);
  });

  it('shares cores among jobs (processor sharing)', () => {
    const q = new EventQueue();
    const cpu = new CpuPool(q, 1);
    const done: [string, number][] = [];
    cpu.run(2, () => done.push(['long', q.now()]));
    cpu.run(1, () => done.push(['short', q.now()]));
    q.run();
    // Both at half speed until the short one ends at 2 ms; the long one's last 1 ms alone.
    expect(done).toEqual([['short', 2], ['long', 3]]);
    const two = new CpuPool(q, 2);
    const t0 = q.now();
    let end = 0;
    two.run(4, () => { end = q.now(); });
    two.run(4, () => {});
    q.run();
    expect(end - t0).toBe(4);
  });

  it('queues messages into one host at its port: two senders take twice as long as one', () => {
    const q = new EventQueue();
    const net = new Network(q, 100, 0);
    for (const h of ['a', 'b', 'c']) net.addHost(h);
    const at: number[] = [];
    net.send('a', 'c', 1000, () => at.push(q.now()));
    q.run();
    net.send('a', 'c', 1000, () => at.push(q.now()));
    net.send('b', 'c', 1000, () => at.push(q.now()));
    q.run();
    // One: 10 ms out of a, then 10 ms through c's port (store and forward of one chunk).
    expect(at[0]).toBe(20);
    // Two at once: c's port carries 2000 bytes, 20 ms, after the first chunk's 10 ms.
    expect(at[2] - at[0]).toBeCloseTo(30, 6);
    expect(net.bytes('c').received).toBe(3000);
  });

  it('the star (the real dispatcher) moves 2 W S through the coordinator per step', async () => {
    const w = toy();
    // A fast link: the compute decides the dispatcher's speed estimates, so its cuts stay aligned (one block a range).
    const fast = { ...free, rate: 1e6 };
    for (const workers of [2, 4]) {
      const r = await simulateStar(w, machine(workers, fast, null), workers, 4, 2);
      const S = w.gradLen * 4;
      // The weights out and one block back per worker (ranges of 8 / W micro-shards, aligned), plus task and frame bytes.
      expect(r.coordinatorBytesPerStep).toBeGreaterThan(2 * workers * S * 0.99);
      expect(r.coordinatorBytesPerStep).toBeLessThan(2 * workers * S * 1.02);
    }
  });

  it('the collective moves S through the coordinator and about 2 S (W-1)/W each way through a member, and is faster than the star on a slow link', async () => {
    const w = toy(8, 500);
    const S = w.gradLen * 4;
    const slow = { ...free, rate: 12.5 }; // 100 Mbit/s
    for (const workers of [2, 4]) {
      const c = await simulateCollective(w, machine(workers, slow, null), workers, 4, 2, 'f32');
      expect(c.coordinatorBytesPerStep).toBeGreaterThan(S);
      expect(c.coordinatorBytesPerStep).toBeLessThan(S * 1.05);
      const perWay = (2 * (workers - 1)) / workers * S + S / workers;
      expect(c.workerBytesPerStep).toBeLessThan(2 * perWay * 1.05);
      const s = await simulateStar(w, machine(workers, slow, null), workers, 4, 2);
      expect(c.msPerStep).toBeLessThan(s.msPerStep);
    }
    const half = await simulateCollective(w, machine(4, slow, null), 4, 4, 2, 'bf16');
    expect(half.coordinatorBytesPerStep).toBeLessThan(0.6 * S);
  });
});
