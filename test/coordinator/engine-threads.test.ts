// The thread engine with real Piscina threads (the worker runs from dist/,
// built by the global setup): bit-exact sums whatever the worker count,
// faults injected at fixed steps, stalls, malformed replies.
import { afterEach, describe, expect, it } from 'vitest';
import type { Dataset } from '../../src/data/dataset.js';
import { isShared } from '../../src/data/dataset.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel, type Model } from '../../src/model/model.js';
import { uniform } from '../../src/random/counter.js';
import { gradLength } from '../../src/train/step.js';
import { parseChaos } from '../../coordinator/chaos.js';
import { createLocalEngine, type GradientEngine } from '../../coordinator/engine.js';
import { createThreadEngine, sharedParams, ThreadEngine, wholeShared, type ThreadEngineOptions } from '../../coordinator/engine-threads.js';

const N = 97;
const F = 12;
const C = 3;
const BATCH = 23;
const K = 7; // uneven shards, uneven ranges

const SPEC = {
  inputShape: [F],
  layers: [
    { type: 'dense', units: 16 },
    { type: 'batchnorm' },
    { type: 'relu' },
    { type: 'dropout', rate: 0.25 },
    { type: 'dense', units: C },
  ],
};

function dataset(): Dataset {
  const x = new Float32Array(N * F);
  const y = new Float32Array(N);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < F; j++) x[i * F + j] = uniform(11, i, j) * 2 - 1;
    y[i] = i % C;
  }
  return { name: 'synthetic', x, y, n: N, xShape: [F], yShape: [], numClasses: C };
}

function model(shared: boolean): Model {
  const size = buildModel(SPEC).size;
  const m = shared ? buildModel(SPEC, { params: sharedParams(size) }) : buildModel(SPEC);
  initModel(m, 5);
  return m;
}

function batchIndices(step: number): Uint32Array {
  const idx = new Uint32Array(BATCH);
  for (let r = 0; r < BATCH; r++) idx[r] = (step * 31 + r * 7) % N;
  return idx;
}

/** Moves the weights a little, the same way on both sides (stands in for the SGD step). */
function nudge(m: Model, sum: Float32Array): void {
  for (let i = 0; i < m.numTrainable; i++) m.params[i] = Math.fround(m.params[i] - Math.fround(0.01 * sum[i]));
}

/** The local engine's sums for `steps` steps, nudging the weights in between. */
function reference(steps: number): Float32Array[] {
  const m = model(false);
  const engine = createLocalEngine(m, getLoss('softmax_cross_entropy'), dataset(), 9, BATCH);
  const out: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const sum = new Float32Array(gradLength(m));
    void engine.batchGradient({ epoch: 0, step: s, indices: batchIndices(s), microShards: K }, sum);
    out.push(sum.slice());
    nudge(m, sum);
  }
  return out;
}

const open: GradientEngine[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

async function threads(workers: number, extra: Partial<ThreadEngineOptions> = {}): Promise<{ engine: ThreadEngine; m: Model; log: string[] }> {
  const m = model(true);
  const log: string[] = [];
  const engine = await createThreadEngine({
    model: m, loss: 'softmax_cross_entropy', seed: 9, session: 'test-session', train: dataset(),
    maxBatch: BATCH, workers, stepTimeoutMs: 0, log: (line) => log.push(line), ...extra,
  });
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

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

describe('ThreadEngine (real worker threads)', () => {
  const ref = reference(4);

  it('gives the local engine\'s sums bit for bit with 1, 2 and 3 threads (BatchNorm + dropout, uneven shards)', async () => {
    for (const workers of [1, 2, 3]) {
      const { engine, m } = await threads(workers);
      const got = await runSteps(engine, m, 4);
      for (let s = 0; s < 4; s++) expect(bits(got[s]), `workers ${workers}, step ${s + 1}`).toEqual(bits(ref[s]));
      const stats = engine.stats();
      expect(stats.steps).toBe(4);
      expect(stats.combineMs).toBeGreaterThan(0);
    }
  });

  it('reassigns the micro-shards of a thread that crashes, throws or answers garbage; the sums do not change', async () => {
    const { engine, m, log } = await threads(2, { chaos: parseChaos('crash:worker=1,step=2;throw:worker=0,step=3;garble:worker=1,step=3;throw:worker=1,step=4') });
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
    const text = log.join('\n');
    expect(text).toMatch(/step 2: worker 1 \(micro-shards 4-6\) failed: worker exited with code: 70; reassigning \(attempt 2 of 4\)/);
    expect(text).toMatch(/step 3: worker 0 \(micro-shards 0-3\) failed: chaos: task \d+ throws in the middle of its range/);
    expect(text).toMatch(/step 3: worker 1 \(micro-shards 4-6\) failed: malformed reply: .*blocks: Invalid input/);
    expect(text).toMatch(/step 4: worker 1 \(micro-shards 4-6\) failed: chaos/);
    // Piscina replaced the thread that exited: the pool is back to two.
    expect((engine as unknown as { pool: { threads: unknown[] } }).pool.threads).toHaveLength(2);
  });

  it('the stall inspector reassigns a stalled range, names it, and ignores the late answer', async () => {
    const { engine, m, log } = await threads(2, { stepTimeoutMs: 1000, chaos: parseChaos('stall:worker=0,step=2,ms=3000') });
    let sawLate!: () => void;
    const late = new Promise<void>((resolve) => { sawLate = resolve; });
    const logFn = (line: string) => { log.push(line); if (/ignored a late answer/.test(line)) sawLate(); };
    (engine as unknown as { log: (l: string) => void }).log = logFn;
    const got = await runSteps(engine, m, 4);
    for (let s = 0; s < 4; s++) expect(bits(got[s]), `step ${s + 1}`).toEqual(bits(ref[s]));
    expect(log.join('\n')).toMatch(/step 2: stalled: [12] of 2 ranges missing after 1000 ms: worker 0 \(micro-shards 0-3, attempt 1\).*; reassigning their micro-shards/);
    await late; // the stalled thread wakes up after its 3 s and answers; the answer is dropped
    expect(log.join('\n')).toMatch(/step 2: ignored a late answer from worker 0 \(micro-shards 0-3, task \d+\)/);
  });

  it('without a step timeout the stall inspector only warns, naming the missing worker, and the step completes', async () => {
    const { engine, m, log } = await threads(2, { stepTimeoutMs: 0, stallWarnMs: 250, chaos: parseChaos('stall:worker=1,step=1,ms=1200') });
    const got = await runSteps(engine, m, 1);
    expect(bits(got[0])).toEqual(bits(ref[0]));
    expect(log.join('\n')).toMatch(/step 1: stalled: 1 of 2 ranges missing after \d+ ms: worker 1 \(micro-shards 4-6, attempt 1\); still waiting \(no step timeout, so not reassigning\)/);
    expect(log.join('\n')).not.toMatch(/reassigning their/);
  });

  it('gives up on a step after maxAttempts failures of one range, naming the micro-shards', async () => {
    const { engine, m } = await threads(2, { maxAttempts: 1, chaos: parseChaos('throw:worker=1,step=1') });
    const sum = new Float32Array(gradLength(m));
    await expect(engine.batchGradient({ epoch: 0, step: 0, indices: batchIndices(0), microShards: K }, sum))
      .rejects.toMatchObject({ code: 'DPT_ERR_WORKER', message: expect.stringMatching(/step 1: micro-shards 4-6 failed 1 times \(chaos: task \d+ throws/) });
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

  it('refuses a model whose weights are not on a SharedArrayBuffer', () => {
    expect(() => new ThreadEngine({
      model: model(false), loss: 'softmax_cross_entropy', seed: 9, session: 's', train: dataset(), maxBatch: BATCH, workers: 1, stepTimeoutMs: 0,
    })).toThrow(/SharedArrayBuffer/);
  });
});
