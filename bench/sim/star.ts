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
import { timeSteps, transfer, work, worked, type Machine, type RunFigures, type Workload } from './model.js';

export type { RunFigures };

/** Floats in the vectors the real code handles in the simulation (the byte counts use the model's). */
export const SHORT = 4;

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
          const computeMs = leaves * w.leafMs(rows) + addsFor(leaves, blocks.length) * G * w.addMsPerFloat + (m.wire.workerStepMs ?? 0);
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
  const figures = await timeSteps(m, workers, steps, warm, async (s) => {
    answered = 0;
    await dispatcher.computeRange({ step: s, version: s + 1, k: w.k, rows: w.batch, start: 0, end: w.k, indices: new Uint32Array(w.batch) }, () => out);
    // The combine of every answered block into the root, then the step, in the coordinator.
    await worked(m, 'coordinator', addsFor(answered, 1) * G * w.addMsPerFloat + w.size * w.applyMsPerFloat + (m.wire.stepMs ?? 0));
  });
  dispatcher.close();
  return figures;
}
