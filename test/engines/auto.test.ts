// The default engine (no worker count): it measures its first steps on the
// worker threads and in the coordinator's thread, keeps the faster, says
// why, and checks its verdict as the run goes on (switching when the other
// engine has become faster). Driven here with fake engines whose steps take
// the time a fake clock says (no real threads, no timing of this machine).
import { describe, expect, it } from 'vitest';
import { createAutoEngine } from '../../coordinator/engines/auto.js';
import type { BatchJob, GradientEngine } from '../../coordinator/engines/engine.js';
import type { Stepper } from '../../coordinator/run/stepper.js';
import { FakeClock } from '../helpers/fake-clock.js';

interface Fake extends GradientEngine { steps: number[]; closed: boolean }

/** An engine whose steps take `ms` on the clock (or ms(i, now) for its i-th step) and write their step number into out[0]. */
function fake(clock: FakeClock, ms: number | ((i: number, now: number) => number), workers: number): Fake {
  const e: Fake = {
    workers, steps: [], closed: false,
    async batchGradient(job: BatchJob, out: Float32Array) {
      clock.advance(typeof ms === 'number' ? ms : ms(e.steps.length, clock.now()));
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

function runner(engine: GradientEngine) {
  let next = 0;
  return {
    async run(steps: number): Promise<void> {
      for (const end = next + steps; next < end; next++) await engine.step!(job(next), stepper, job(next + 1));
    },
    /** Runs until the engine has chosen (at most `limit` steps); the steps it took. */
    async untilChosen(limit = 2000): Promise<number> {
      const start = next;
      while (engine.choice!() === undefined && next - start < limit) await this.run(1);
      return next - start;
    },
    step: () => next,
  };
}

/**
 * The default engine between a fake engine here (`localMs` a step) and one
 * on 2 threads (`threadsMs`), its log, and a runner; run through its 12 first
 * steps here and until it has chosen.
 */
async function chosen(localMs: number, threadsMs: number | ((i: number, now: number) => number)) {
  const clock = new FakeClock();
  const local = fake(clock, localMs, 0);
  const threads = fake(clock, threadsMs, 2);
  const log: string[] = [];
  const auto = createAutoEngine(local, 2, async () => threads, 1, (l) => log.push(l), clock);
  const r = runner(auto);
  await r.run(12);
  await r.untilChosen();
  return { clock, local, threads, log, auto, r };
}

describe('the default engine: threads or the coordinator\'s thread, measured', () => {
  it('keeps the threads when they are faster, says so only then, with the figures; checks now and then, less and less often', async () => {
    const clock = new FakeClock();
    const local = fake(clock, 1.0, 0);
    const threads = fake(clock, 0.8, 2);
    const log: string[] = [];
    let started = 0;
    const auto = createAutoEngine(local, 2, async () => { started++; return threads; }, 1, (l) => log.push(l), clock);
    const r = runner(auto);
    // 12 steps here (4 not timed, 8 timed: 1 ms is worth the threads); then blocks of 8 in turns.
    await r.run(12);
    expect(started).toBe(1);
    expect(log).toEqual([]);
    const steps = await r.untilChosen();
    // The threads' steps count once they have computed for 40 ms (50 steps of 0.8 ms), and 12 of them are needed
    // (0.8 against 1.0 is no clear case).
    expect(threads.steps.length * 0.8).toBeGreaterThanOrEqual(40 + 12 * 0.8);
    expect(steps).toBeLessThan(400);
    expect(auto.choice!()).toMatchObject({ workers: 2 });
    expect(auto.choice!()!.reason).toBe('a step took 0.80 ms on 2 worker threads and 1.00 ms in the coordinator\'s thread ' +
      '(median of 12 steps each): training on the 2 threads');
    expect(log).toEqual([`workers: ${auto.choice!()!.reason}`]);
    // Checks: a block of 8 steps here (then 8 on the threads, side by side) after 64 steps on the threads, then
    // after 128, 256, ...: the verdict stands.
    const here = () => local.steps.length;
    const before = here();
    await r.run(64);
    expect(here()).toBe(before);
    await r.run(8);
    expect(here()).toBe(before + 8);
    await r.run(8 + 128);
    expect(here()).toBe(before + 8);
    await r.run(8);
    expect(here()).toBe(before + 16);
    expect(log).toHaveLength(1);
    expect(threads.closed).toBe(false);
    expect(auto.workers).toBe(2);
    expect(auto.summaries!()).toHaveLength(1);
  });

  it('keeps the coordinator\'s thread when the threads are slower, and keeps checking them (they stay started)', async () => {
    const { auto, r, local, threads } = await chosen(0.5, 0.9);
    expect(auto.choice!()).toMatchObject({ workers: 0, reason: expect.stringMatching(/^a step took 0\.90 ms on 2 worker threads and 0\.50 ms .*: training in the coordinator's thread \(as --workers 0\)$/) });
    expect(auto.workers).toBe(0);
    expect(auto.summaries!()).toEqual([]);
    const onThreads = threads.steps.length;
    await r.run(64 + 8);
    expect(threads.steps.length).toBe(onThreads + 8);
    expect(auto.choice!()!.workers).toBe(0);
    expect(threads.closed).toBe(false);
    await auto.close();
    expect(threads.closed).toBe(true);
    expect(local.closed).toBe(true);
  });

  it('decides early when one engine is clearly faster, and checks a far slower one seldom: checks cost at most 3% of the run', async () => {
    // Another process on the machine: two threads that must run at once take 6 ms a step.
    const { auto, r, threads, clock } = await chosen(1.0, 6.0);
    expect(auto.choice!()!.reason).toMatch(/^a step took 6\.00 ms on 2 worker threads and 1\.00 ms .*\(median of \d+ steps each\): training in the coordinator's thread/);
    // Against the threads only after two blocks of theirs: one block can be slow for a moment's reasons.
    expect(threads.steps.length).toBeLessThanOrEqual(3 * 8 + 8);
    const atVerdict = threads.steps.length;
    const t0 = clock.now();
    await r.run(5000);
    const checks = (threads.steps.length - atVerdict) / 8;
    const lost = checks * 8 * (6.0 - 1.0);
    expect(checks).toBeGreaterThanOrEqual(1);
    expect(lost / (clock.now() - t0)).toBeLessThan(0.035);
  });

  it('switches when the speeds change: another process takes a core from the threads, then gives it back', async () => {
    // The threads: 0.6 ms a step, 2.4 while another process runs (from 1 s to 2 s on the clock).
    let busy = false;
    const { auto, r, log } = await chosen(1.0, () => (busy ? 2.4 : 0.6));
    expect(auto.choice!()!.workers).toBe(2);
    await r.run(300);
    busy = true;
    // The threads' median moves by 25% or more within 12 of their steps: a check at once, and the switch.
    const at = r.step();
    for (let i = 0; i < 40 && auto.choice!()!.workers === 2; i++) await r.run(1);
    expect(auto.choice!()!.workers).toBe(0);
    expect(r.step() - at).toBeLessThan(40);
    expect(log[1]).toMatch(/^workers: at step \d+, a step took 2\.40 ms on 2 worker threads and 1\.00 ms in the coordinator's thread \(median of 6 steps each\): switching to training in the coordinator's thread \(as --workers 0\)$/);
    busy = false;
    // Back on the coordinator's thread; its next check (64 steps on) finds the threads fast again.
    for (let i = 0; i < 200 && auto.choice!()!.workers === 0; i++) await r.run(1);
    expect(auto.choice!()!.workers).toBe(2);
    expect(log[2]).toMatch(/^workers: at step \d+, a step took 0\.60 ms on 2 worker threads and 1\.00 ms .*: switching to training on the 2 threads$/);
    expect(log).toHaveLength(3);
  });

  it('a moment\'s slowdown of the chosen threads (an epoch\'s evaluation, a pause) calls a check but no switch', async () => {
    // 0.6 ms a step, but 3 ms for 14 steps now and then (the threads woke up slowly after the coordinator evaluated).
    let spikeLeft = 0;
    const { auto, r, log } = await chosen(1.0, () => (spikeLeft-- > 0 ? 3.0 : 0.6));
    expect(auto.choice!()!.workers).toBe(2);
    for (let i = 0; i < 10; i++) {
      await r.run(150);
      spikeLeft = 14;
    }
    await r.run(150);
    expect(log).toHaveLength(1);
    expect(auto.choice!()!.workers).toBe(2);
  });

  it('one slow block of the threads (they start their loop again, their code compiles) is no verdict against them, however clear', async () => {
    // Warm (40 ms computed) after their 16th step, two blocks of 8; their next block runs at 2.2 ms a step, the later ones at 0.5.
    const { auto, log } = await chosen(0.8, (i) => (i < 16 ? 2.5 : i < 24 ? 2.2 : 0.5));
    expect(auto.choice!()).toMatchObject({ workers: 2 });
    expect(log).toEqual([expect.stringMatching(/^workers: a step took 0\.50 ms on 2 worker threads and 0\.80 ms .*: training on the 2 threads$/)]);
  });

  it('a check does not hold the threads\' way back against them: their pace is the faster of their steps before the check and their block after it', async () => {
    // 0.5 ms a step, but their first 6 steps after each block here take 4.5 ms (they wake, start their loop again).
    let backAt = -1;
    const { auto, r, local, threads } = await chosen(0.8, (i) => (backAt >= 0 && i - backAt < 6 ? 4.5 : 0.5));
    expect(auto.choice!()!.workers).toBe(2);
    const atVerdict = local.steps.length;
    let onLocal = atVerdict;
    for (let i = 0; i < 2000; i++) {
      await r.run(1);
      if (local.steps.length > onLocal) { onLocal = local.steps.length; backAt = threads.steps.length; }
      expect(auto.choice!()!.workers).toBe(2);
    }
    expect(local.steps.length).toBeGreaterThanOrEqual(atVerdict + 4 * 8); // checks ran: after 64, 128, 256 and 512 steps
  });

  it('a verdict taken while the threads were still slow (compiling) is corrected by a later check', async () => {
    // 1.5 ms a step for the first 0.5 s on the clock (their code compiling in the background), 0.6 after.
    const { auto, r } = await chosen(1.0, (_i, now) => (now < 500 ? 1.5 : 0.6));
    expect(auto.choice!()!.workers).toBe(0);
    for (let i = 0; i < 1000 && auto.choice!()!.workers === 0; i++) await r.run(1);
    expect(auto.choice!()!.workers).toBe(2);
  });

  it('never uses the threads when its own steps are too short for them to gain: closes them, never checks them', async () => {
    const clock = new FakeClock();
    const local = fake(clock, 0.03, 0);
    const threads = fake(clock, 0.01, 2);
    const auto = createAutoEngine(local, 2, async () => threads, 1, () => {}, clock);
    const r = runner(auto);
    await r.run(3000);
    expect(threads.steps).toEqual([]);
    expect(threads.closed).toBe(true);
    expect(auto.choice!()).toMatchObject({
      workers: 0,
      reason: expect.stringMatching(/^a step took 0\.03 ms in the coordinator's thread \(median of 8\), too short for 2 worker threads to gain/),
    });
    expect(local.steps).toHaveLength(3000);
  });
});
