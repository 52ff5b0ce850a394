// The default engine (no worker count): it measures its first steps on the
// worker threads and in the coordinator's thread, then keeps the faster and
// says why. Driven here with fake engines whose steps take the time a fake
// clock says (no real threads, no timing of this machine).
import { describe, expect, it } from 'vitest';
import { createAutoEngine } from '../../coordinator/engines/auto.js';
import type { BatchJob, GradientEngine } from '../../coordinator/engines/engine.js';
import type { Stepper } from '../../coordinator/run/stepper.js';
import { FakeClock } from '../helpers/fake-clock.js';

interface Fake extends GradientEngine { steps: number[]; closed: boolean }

/** An engine whose steps take `ms` on the clock (or ms(i) for its i-th step) and write their step number into out[0]. */
function fake(clock: FakeClock, ms: number | ((i: number) => number), workers: number): Fake {
  const e: Fake = {
    workers, steps: [], closed: false,
    async batchGradient(job: BatchJob, out: Float32Array) {
      clock.advance(typeof ms === 'number' ? ms : ms(e.steps.length));
      e.steps.push(job.step);
      out[0] = job.step;
    },
    summaries: () => [{ id: 't0', kind: 'thread', host: 'local', threads: 1, microShards: 1, samplesPerSec: 1, faults: 0, verified: 0, state: 'idle' }],
    async close() { e.closed = true; },
  };
  return e;
}

/** Applies nothing: says which step's sum it was given (the engines write the step number into it). */
const stepper = {
  apply: (step: number, sum: Float32Array) => {
    expect(sum[0]).toBe(step); // every step computed, by one engine or the other
    return { result: { loss: 0, dataLoss: 0, penalty: 0, samples: 1 }, lr: 0 };
  },
} as unknown as Stepper;

const job = (step: number): BatchJob => ({ epoch: 0, step, indices: new Uint32Array(1), microShards: 1 });

let next = 0;
async function run(engine: GradientEngine, steps: number): Promise<void> {
  for (const end = next + steps; next < end; next++) await engine.step!(job(next), stepper, job(next + 1));
}

describe('the default engine: threads or the coordinator\'s thread, measured', () => {
  it('keeps the threads when they are faster, and says so with the figures', async () => {
    next = 0;
    const clock = new FakeClock();
    const local = fake(clock, 1.0, 0);
    const threads = fake(clock, 0.6, 2);
    const log: string[] = [];
    let started = 0;
    const auto = createAutoEngine(local, 2, async () => { started++; return threads; }, 1, (l) => log.push(l), clock);
    expect(auto.workers).toBe(2);
    // 12 steps here (4 not timed, 8 timed: 1 ms is worth the threads), then blocks of 6 in turns, the first 2 of each
    // and the first 2 steps of a block not counted: the 48th step of the blocks decides.
    await run(auto, 12);
    expect(started).toBe(1);
    await run(auto, 47);
    expect(auto.choice!()).toBeUndefined();
    await run(auto, 1);
    expect(auto.choice!()).toMatchObject({ workers: 2 });
    expect(auto.choice!()!.reason).toBe('a step took 0.60 ms on 2 worker threads and 1.00 ms in the coordinator\'s thread ' +
      '(median of 8 steps each): training on the 2 threads');
    expect(log).toEqual([`workers: ${auto.choice!()!.reason}`]);
    const before = local.steps.length;
    await run(auto, 10);
    expect(local.steps.length).toBe(before);
    expect(threads.closed).toBe(false);
    expect(auto.summaries!()).toHaveLength(1);
  });

  it('falls back to the coordinator\'s thread when the threads are slower, and closes them', async () => {
    next = 0;
    const clock = new FakeClock();
    const local = fake(clock, 0.5, 0);
    const threads = fake(clock, 0.9, 2);
    const auto = createAutoEngine(local, 2, async () => threads, 1, () => {}, clock);
    await run(auto, 12 + 240);
    expect(auto.choice!()).toMatchObject({ workers: 0, reason: expect.stringMatching(/^a step took 0\.90 ms on 2 worker threads and 0\.50 ms .*training in the coordinator's thread \(as --workers 0\)$/) });
    expect(threads.closed).toBe(true);
    expect(auto.workers).toBe(0);
    expect(auto.summaries!()).toEqual([]);
    // 12 steps here, then blocks of 6 steps in turns while measuring: slower, the threads are given 100 ms of
    // steps to warm up before the verdict (19 blocks of 5.4 ms), then only the coordinator's thread.
    expect(threads.steps).toEqual(Array.from({ length: 19 * 6 }, (_, i) => 12 + 12 * Math.floor(i / 6) + (i % 6)));
    expect(local.steps.slice(-12)).toEqual(Array.from({ length: 12 }, (_, i) => 240 + i));
    await auto.close();
    expect(local.closed).toBe(true);
  });

  it('waits for threads that are still warming up (faster block after block) before it rules against them', async () => {
    next = 0;
    const clock = new FakeClock();
    const local = fake(clock, 1.0, 0);
    // Their code compiling: 2 ms a step at first, 0.05 ms less each step, down to 0.6.
    const threads = fake(clock, (i) => Math.max(0.6, 2.0 - 0.05 * i), 2);
    const auto = createAutoEngine(local, 2, async () => threads, 1, () => {}, clock);
    // At the 48th step of the blocks, the last 8 counted thread steps (1.30-0.85 ms) are slower than here (1.00):
    // measured once, the threads would be dropped; their last block was faster than the one before, so it waits.
    await run(auto, 12 + 48);
    expect(auto.choice!()).toBeUndefined();
    await run(auto, 12);
    expect(auto.choice!()).toMatchObject({ workers: 2, reason: expect.stringMatching(/^a step took 0\.78 ms on 2 worker threads and 1\.00 ms/) });
    expect(threads.closed).toBe(false);
  });

  it('never starts the threads when its own steps are too short for them to gain', async () => {
    next = 0;
    const clock = new FakeClock();
    const local = fake(clock, 0.03, 0);
    let started = 0;
    const auto = createAutoEngine(local, 2, async () => { started++; return fake(clock, 0.01, 2); }, 1, () => {}, clock);
    await run(auto, 30);
    expect(started).toBe(0);
    expect(auto.choice!()).toMatchObject({
      workers: 0,
      reason: expect.stringMatching(/^a step took 0\.03 ms in the coordinator's thread \(median of 8\), too short for 2 worker threads to gain/),
    });
    expect(local.steps).toHaveLength(30);
  });
});
