// The thread transport under the dispatcher, with real Piscina threads (the
// worker runs from dist/, built by the global setup): bit-exact sums
// whatever the thread count, faults injected at fixed steps, stalls,
// malformed replies. (The dispatcher's own logic is tested over an
// in-memory transport with a fake clock in dispatcher.test.ts.)
import { afterEach, describe, expect, it } from 'vitest';
import { isShared } from '../../src/data/dataset.js';
import type { Model } from '../../src/model/model.js';
import { gradLength } from '../../src/train/step.js';
import { parseChaos } from '../../src/dispatch/chaos.js';
import { Dispatcher, type DispatcherOptions } from '../../src/dispatch/dispatcher.js';
import type { GradientEngine } from '../../coordinator/engines/engine.js';
import { createDispatchEngine } from '../../coordinator/engines/dispatch-engine.js';
import { sharedParams, startThreadTransport, wholeShared } from '../../node/threads/transport.js';
import { BATCH, batchIndices, bits, dataset, K, LOSS, model, nudge, reference, SEED, SPEC } from '../helpers/synthetic.js';

const open: GradientEngine[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

async function threads(
  workers: number, extra: Partial<DispatcherOptions> = {}, shared = true, onLog?: (line: string) => void, ownCopyBytes?: number,
): Promise<{ engine: GradientEngine; m: Model; log: string[] }> {
  const m = model(shared ? sharedParams : undefined);
  const log: string[] = [];
  const dispatcher = new Dispatcher({ gradLen: gradLength(m), stepTimeoutMs: 0, log: (line) => { log.push(line); onLog?.(line); }, ...extra });
  const board = { version: 0, params: m.params };
  const transport = await startThreadTransport({
    threads: workers, dispatcher, board, model: SPEC, loss: LOSS, seed: SEED, session: 'test-session',
    train: dataset(), maxBatch: BATCH, log: (line) => log.push(line), ownCopyBytes,
  });
  const engine = createDispatchEngine(dispatcher, board, () => transport.close());
  open.push(engine);
  return { engine, m, log };
}

async function runSteps(engine: GradientEngine, m: Model, steps: number): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const sum = new Float32Array(gradLength(m));
    await engine.batchGradient({ epoch: 0, step: s, indices: batchIndices(s), microShards: K }, sum);
    out.push(sum.slice());
    nudge(m, sum);
  }
  return out;
}


describe('thread transport (real worker threads)', () => {
  const ref = reference(4);

  it('gives the local engine\'s sums bit for bit with 1, 2 and 3 threads (BatchNorm + dropout, uneven shards)', async () => {
    for (const workers of [1, 2, 3]) {
      const { engine, m } = await threads(workers);
      const got = await runSteps(engine, m, 4);
      for (let s = 0; s < 4; s++) expect(bits(got[s]), `workers ${workers}, step ${s + 1}`).toEqual(bits(ref[s]));
      const stats = engine.stats!();
      expect(stats.steps).toBe(4);
      expect(stats.combineMs).toBeGreaterThan(0);
    }
  });

  it('gives the same bits when the threads read the shared training set instead of their own copies (a set too large to copy)', async () => {
    const { engine, m } = await threads(2, {}, true, undefined, 0);
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
  });

  it('reassigns the micro-shards of a thread that crashes, throws or answers garbage; the sums do not change', async () => {
    const { engine, m, log } = await threads(2, { chaos: parseChaos('crash:worker=1,step=2;throw:worker=0,step=3;garble:worker=1,step=3;throw:worker=1,step=4') });
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
    const text = log.join('\n');
    expect(text).toMatch(/step 2: worker t1 \(micro-shards \d-6\) failed: worker exited with code: 70; reassigning \(attempt 2 of 4\)/);
    expect(text).toMatch(/step 3: worker t0 \(micro-shards 0-\d\) failed: chaos: task \d+ throws in the middle of its range/);
    expect(text).toMatch(/step 3: worker t1 \(micro-shards \d-6\) failed: malformed reply: .*blocks: Invalid input/);
    expect(text).toMatch(/step 4: worker t1 \(micro-shards \d-6\) failed: chaos/);
    // Piscina replaced the thread that exited: both links still work.
    expect(engine.workers).toBe(2);
  });

  it('the stall inspector reassigns a stalled range, names it, and ignores the late answer', async () => {
    let sawLate!: () => void;
    const late = new Promise<void>((resolve) => { sawLate = resolve; });
    const { engine, m, log } = await threads(2, { stepTimeoutMs: 1000, chaos: parseChaos('stall:worker=0,step=2,ms=3000') }, true,
      (line) => { if (/ignored a late answer/.test(line)) sawLate(); });
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
    expect(log.join('\n')).toMatch(/step 2: stalled: 1 of 2 ranges missing after 1000 ms: worker t0 \(micro-shards 0-\d, attempt 1\).*; reassigning their micro-shards/);
    await late; // the stalled thread wakes up after its 3 s and answers; the answer is dropped
    expect(log.join('\n')).toMatch(/ignored a late answer from worker t0/);
  });

  it('without a step timeout the stall inspector only warns, naming the missing worker, and the step completes', async () => {
    const { engine, m, log } = await threads(2, { stepTimeoutMs: 0, stallWarnMs: 250, chaos: parseChaos('stall:worker=1,step=1,ms=1200') });
    const got = await runSteps(engine, m, 1);
    expect(bits(got[0])).toEqual(bits(ref[0]));
    expect(log.join('\n')).toMatch(/step 1: stalled: 1 of 2 ranges missing after \d+ ms: worker t1 \(micro-shards 4-6, attempt 1\); still waiting \(no step timeout, so not reassigning\)/);
    expect(log.join('\n')).not.toMatch(/reassigning their/);
  });

  it('gives up on a step after maxAttempts failures of one range, naming the micro-shards', async () => {
    const { engine, m } = await threads(2, { maxAttempts: 1, chaos: parseChaos('throw:worker=1,step=1') });
    const sum = new Float32Array(gradLength(m));
    await expect(engine.batchGradient({ epoch: 0, step: 0, indices: batchIndices(0), microShards: K }, sum))
      .rejects.toMatchObject({ code: 'DPT_ERR_WORKER', message: expect.stringMatching(/step 1: micro-shards 4-6 failed 1 times \(worker t1 failed: chaos: task \d+ throws/) });
  });

  it('a corrupt worker changes exactly the element it was told to', async () => {
    const { engine, m } = await threads(2, { chaos: parseChaos('corrupt:worker=0,step=1,index=5') });
    const got = await runSteps(engine, m, 1);
    const diff = [...bits(got[0])].flatMap((b, i) => (b !== bits(ref[0])[i] ? [i] : []));
    expect(diff).toEqual([5]);
  });

  it('shares the training set instead of copying it when it already lives on whole SharedArrayBuffers', () => {
    const ds = wholeShared(dataset());
    expect(isShared(ds.x) && isShared(ds.y)).toBe(true);
    expect(wholeShared(ds)).toBe(ds);
  });

  it('copies the weights into shared memory once per step when the board does not live there (a network worker\'s weights)', async () => {
    const { engine, m } = await threads(2, {}, false);
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
  });
});
