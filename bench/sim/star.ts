// The star, simulated: the real dispatcher (src/dispatch/
// dispatcher.ts: its cut by measured speed, its attempts and stall
// inspector, on simulated time) hands each step's micro-shards to W
// simulated workers; what ws.ts would send is moved over the simulated
// links: the weights (once per version) with the task, and one gradient
// vector per aligned block back. The coordinator then combines (the real
// tree code, on vectors shortened to SHORT floats; its time is modelled for
// the real length) and applies the step before it dispatches the next one,
// as the dispatch engine does.
import { Dispatcher, type RangeOrder, type WorkerLink } from '../../src/dispatch/dispatcher.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { shardBounds } from '../../src/train/batch.js';
import { transfer, work, type Machine, type Workload } from './model.js';

/** Floats in the vectors the real code handles in the simulation (the byte counts use the model's). */
export const SHORT = 4;

export interface RunFigures {
  msPerStep: number;
  coordinatorBytesPerStep: number;
  workerBytesPerStep: number;
}

/** Internal tree nodes formed to reduce `leaves` leaves into `blocks` block sums. */
export function addsFor(leaves: number, blocks: number): number {
  return Math.max(0, leaves - blocks);
}

export async function simulateStar(w: Workload, m: Machine, workers: number, steps: number, warm: number): Promise<RunFigures> {
  const G = w.gradLen;
  const dispatcher = new Dispatcher({ gradLen: SHORT, stepTimeoutMs: 0, clock: m.q });
  const held = new Map<string, number>();
  /** Blocks answered this step: the coordinator combines them into the root. */
  let answered = 0;
  for (let i = 0; i < workers; i++) {
    const host = `w${i}`;
    const link: WorkerLink = {
      info: { id: host, kind: 'process', host, threads: 1 },
      send(order: RangeOrder) {
        const weights = held.get(host) === order.version ? 0 : w.size * 4;
        held.set(host, order.version);
        const blocks = alignedBlocks(order.k, order.start, order.end);
        transfer(m, 'coordinator', host, weights + 4 * order.indices.length + 100, () => {
          const rows = order.rows / order.k;
          const leaves = order.end - order.start;
          const computeMs = leaves * w.leafMs(rows) + addsFor(leaves, blocks.length) * G * w.addMsPerFloat;
          const t0 = m.q.now();
          work(m, host, computeMs, () => {
            transfer(m, host, 'coordinator', blocks.length * G * 4, () => {
              const sums = new Float32Array(blocks.length * SHORT);
              blocks.forEach((b, j) => {
                sums[j * SHORT + SHORT - 1] = shardBounds(order.rows, order.k, b.end - 1)[1] - shardBounds(order.rows, order.k, b.start)[0];
              });
              answered += blocks.length;
              dispatcher.answer(host, {
                taskId: order.taskId, version: order.version, blocks: blocks.map((b) => ({ level: b.level, index: b.index })), sums, computeMs: m.q.now() - t0,
              });
            });
          });
        });
      },
      drop(reason) { throw new Error(`simulated worker ${host} dropped: ${reason}`); },
    };
    dispatcher.join(link);
  }
  const out = new Float32Array(SHORT);
  let t0 = 0;
  let c0 = { sent: 0, received: 0 };
  let w0: { sent: number; received: number }[] = [];
  for (let s = 0; s < warm + steps; s++) {
    if (s === warm) {
      t0 = m.q.now();
      c0 = m.net.bytes('coordinator');
      w0 = Array.from({ length: workers }, (_, i) => m.net.bytes(`w${i}`));
    }
    const rows = w.batch;
    let done = false;
    answered = 0;
    void dispatcher.computeRange(
      { step: s, version: s + 1, k: w.k, rows, start: 0, end: w.k, indices: new Uint32Array(rows) }, () => out,
    ).then(() => {
      // The combine of every answered block into the root, then the step, in the coordinator.
      work(m, 'coordinator', addsFor(answered, 1) * G * w.addMsPerFloat + w.size * w.applyMsPerFloat, () => { done = true; });
    });
    await m.q.drive(() => done, `step ${s + 1} of the star`);
  }
  dispatcher.close();
  const ms = m.q.now() - t0;
  const c1 = m.net.bytes('coordinator');
  const busiest = Math.max(...w0.map((b, i) => { const a = m.net.bytes(`w${i}`); return a.sent + a.received - b.sent - b.received; }));
  return { msPerStep: ms / steps, coordinatorBytesPerStep: (c1.sent + c1.received - c0.sent - c0.received) / steps, workerBytesPerStep: busiest / steps };
}
