// The step loop (worker threads that compute, reduce and apply whole steps,
// coordinator/engines/step-loop.ts) with real Piscina threads: the
// weights and the optimizer state bit-identical to one thread after every
// step (BatchNorm, dropout, L1 + L2, Nesterov momentum with weight decay,
// uneven last batches), the weights untouched while the threads work a step
// ahead, a thread that dies in the loop, a step asked out of turn.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type TrainConfig } from '../../coordinator/run/config.js';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { runStep, type BatchJob, type GradientEngine } from '../../coordinator/engines/engine.js';
import { createDispatchEngine } from '../../coordinator/engines/dispatch-engine.js';
import { createLocalEngine } from '../../coordinator/engines/local.js';
import { createStepLoopEngine } from '../../coordinator/engines/step-loop.js';
import { sharedParams, startThreadTransport, type ThreadTransport } from '../../node/threads/transport.js';
import { buildTrainModel, createStepper, type Stepper } from '../../coordinator/run/stepper.js';
import { getLoss } from '../../src/losses/index.js';
import { gradLength } from '../../src/train/step.js';
import { ARMED_CANCEL, H, S, slotOf } from '../../src/steploop/board.js';
import { bits, dataset, LOSS, N, SEED, SPEC } from '../helpers/synthetic.js';

// The synthetic model with L1 and L2 on its dense layers; 23-row batches of 97 samples: every fifth batch has 5 rows.
const CONFIG: TrainConfig = parseConfig({
  seed: SEED, data: { type: 'mnist', view: 'flat' },
  model: { ...SPEC, layers: SPEC.layers.map((l) => (l.type === 'dense' ? { ...l, l1: 1e-4, l2: 5e-4 } : l)) },
  loss: LOSS, optimizer: { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }, schedule: { type: 'cosine' },
  epochs: 4, batchSize: 23, microShards: 7,
}, 'test config');

const open: GradientEngine[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

interface Run { stepper: Stepper; engine: GradientEngine; transport: ThreadTransport; log: string[] }

async function threads(workers: number, config: TrainConfig = CONFIG): Promise<Run> {
  const model = buildTrainModel(config, sharedParams);
  const stepper = createStepper(config, model, N, sharedParams);
  const log: string[] = [];
  const dispatcher = new Dispatcher({ gradLen: gradLength(model), stepTimeoutMs: 0, log: (line) => log.push(line) });
  const weights = { version: 0, params: model.params };
  const transport = await startThreadTransport({
    threads: workers, dispatcher, board: weights, model: CONFIG.model, loss: LOSS, seed: SEED, session: 'loop-test',
    train: dataset(), maxBatch: CONFIG.batchSize, log: (line) => log.push(line),
  });
  const general = createDispatchEngine(dispatcher, weights, () => transport.close());
  const engine = createStepLoopEngine({ lanes: transport.steps!, general, weights, model, stepTimeoutMs: 0, log: (line) => log.push(line) });
  open.push(engine);
  return { stepper, engine, transport, log };
}

/** One thread, step by step: the weights, the velocity and the loss after each of `steps` (job indices). */
function reference(steps: readonly number[], config: TrainConfig = CONFIG): { params: number[]; velocity: number[]; loss: number; m: number[]; v: number[]; update: number }[] {
  const model = buildTrainModel(config);
  const stepper = createStepper(config, model, N);
  const engine = createLocalEngine(model, getLoss(LOSS), dataset(), SEED, CONFIG.batchSize);
  const sum = new Float32Array(gradLength(model));
  return steps.map((s) => {
    void engine.batchGradient(stepper.job(s), sum);
    const { result } = stepper.apply(s, sum);
    const o = stepper.optimizerState;
    return { params: bits(model.params), velocity: bits(o.velocity), loss: result.loss, m: bits(o.m), v: bits(o.v), update: o.step };
  });
}

function expectStep(r: Run, want: { params: number[]; velocity: number[]; loss: number }, loss: number, what: string): void {
  expect(bits(r.stepper.model.params), `${what}: weights`).toEqual(want.params);
  expect(bits(r.stepper.optimizerState.velocity), `${what}: velocity`).toEqual(want.velocity);
  expect(loss, `${what}: loss`).toBe(want.loss);
}

/** Resolves once every thread has computed its blocks of step sequence number `seq` (they then wait for its permit). */
async function computed(r: Run, seq: number, lanes: number): Promise<void> {
  const w = slotOf(r.transport.steps!.board, seq).words;
  for (let v = Atomics.load(w, S.READY); v < lanes || Atomics.load(w, S.SEQ) !== seq; v = Atomics.load(w, S.READY)) {
    const wait = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> } })
      .waitAsync(w, S.READY, v, 20);
    if (wait.async) await wait.value;
  }
}

/** Resolves once every thread has armed step sequence number `seq` (past its permit: the step will be written whole). */
async function armed(r: Run, seq: number, lanes: number): Promise<void> {
  const w = slotOf(r.transport.steps!.board, seq).words;
  for (let v = Atomics.load(w, S.ARMED); (v & ~ARMED_CANCEL) < lanes && Atomics.load(r.transport.steps!.board.header, H.DONE) < seq; v = Atomics.load(w, S.ARMED)) {
    const wait = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: Promise<string> } })
      .waitAsync(w, S.ARMED, v, 20);
    if (wait.async) await wait.value;
  }
}

describe('the step loop: worker threads compute, reduce and apply whole steps', () => {
  const STEPS = Array.from({ length: 12 }, (_, i) => i);
  const ref = reference(STEPS);

  it('gives one thread\'s weights, velocity and loss bit for bit after every step, with 1, 2 and 3 threads', async () => {
    for (const workers of [1, 2, 3]) {
      const r = await threads(workers);
      const sum = new Float32Array(gradLength(r.stepper.model));
      for (const s of STEPS) {
        const next: BatchJob | undefined = s + 1 < STEPS.length ? r.stepper.job(s + 1) : undefined;
        const { result } = await runStep(r.engine, r.stepper.job(s), r.stepper, sum, next);
        expectStep(r, ref[s], result.loss, `workers ${workers}, step ${s + 1}`);
      }
      // Every step ran in the loop (none through the dispatcher).
      expect(r.engine.stats!().loop).toMatchObject({ steps: STEPS.length, fallbacks: 0 });
      expect(r.engine.summaries!().reduce((n, w) => n + w.microShards, 0)).toBeGreaterThan(0);
    }
  });

  it('leaves the weights as the last step made them while the threads work a step ahead', async () => {
    const r = await threads(2);
    await r.engine.step!(r.stepper.job(0), r.stepper, r.stepper.job(1));
    // The next step is computed and waits for its permit: nothing of it is written yet.
    await computed(r, 2, 2);
    expectStep(r, ref[0], ref[0].loss, 'after step 1, with step 2 computed');
    const { result } = await r.engine.step!(r.stepper.job(1), r.stepper);
    expectStep(r, ref[1], result.loss, 'step 2');
  });

  it('a thread that dies in the loop: the run goes on (the dispatcher, then a new loop) to the same weights', async () => {
    const r = await threads(2);
    const sum = new Float32Array(gradLength(r.stepper.model));
    await runStep(r.engine, r.stepper.job(0), r.stepper, sum, r.stepper.job(1));
    await computed(r, 2, 2);
    expect(await r.transport.terminateThread(1)).toBe(true);
    for (const s of STEPS.slice(1)) {
      const next = s + 1 < STEPS.length ? r.stepper.job(s + 1) : undefined;
      const { result } = await runStep(r.engine, r.stepper.job(s), r.stepper, sum, next);
      expectStep(r, ref[s], result.loss, `step ${s + 1}`);
    }
    expect(r.log.join('\n')).toMatch(/worker t1.*: its thread exited \(worker exited with code: 1\) in the step loop/);
    // Piscina replaced the thread; the later steps ran in a new loop again.
    expect(r.engine.workers).toBe(2);
    expect(r.engine.stats!().loop!.steps).toBeGreaterThan(1);
  });

  it('closing mid-step: a step the threads were writing completes (and the call gets it), one they were not is dropped, never half', async () => {
    const seen = new Set<string>();
    for (const armedFirst of [false, true, false, true]) {
      const r = await threads(2);
      const sum = new Float32Array(gradLength(r.stepper.model));
      await runStep(r.engine, r.stepper.job(0), r.stepper, sum, armedFirst ? r.stepper.job(1) : undefined);
      if (armedFirst) await computed(r, 2, 2); // step 2 computed: the permit lets the threads arm at once
      const pending = r.engine.step!(r.stepper.job(1), r.stepper).then(() => 'completed', (err: Error) => err.message);
      // With every thread armed, the step is written whole whatever close() does; otherwise close() races the threads.
      if (armedFirst) await armed(r, 2, 2);
      open.pop();
      await r.engine.close();
      const fate = await pending;
      // The board says which happened: the coordinator's cancel (no thread writes) or every thread armed (all write).
      const cancelled = (Atomics.load(slotOf(r.transport.steps!.board, 2).words, S.ARMED) & ARMED_CANCEL) !== 0;
      expect(fate === 'completed' ? 'completed' : 'dropped', `armed first: ${armedFirst}`).toBe(cancelled ? 'dropped' : 'completed');
      seen.add(cancelled ? 'dropped' : 'completed');
      if (armedFirst) expect(fate).toBe('completed');
      if (fate === 'completed') expectStep(r, ref[1], ref[1].loss, 'completed while closing');
      else {
        expect(fate).toMatch(/step 2: the run is shutting down/);
        expectStep(r, ref[0], ref[0].loss, 'dropped while closing');
      }
    }
    expect(seen.has('completed')).toBe(true);
  });

  it('a step asked out of turn (not the one worked ahead) starts a new loop, with the right weights', async () => {
    const order = [0, 1, 2, 5, 6, 7];
    const want = reference(order);
    const r = await threads(2);
    const sum = new Float32Array(gradLength(r.stepper.model));
    for (const [i, s] of order.entries()) {
      // Each call announces s + 1 as the next step, which is wrong after step 3.
      const { result } = await runStep(r.engine, r.stepper.job(s), r.stepper, sum, r.stepper.job(s + 1));
      expectStep(r, want[i], result.loss, `job ${s}`);
    }
    expect(Atomics.load(r.transport.steps!.board.header, H.DONE)).toBeGreaterThan(0);
  });
});

describe('the step loop after steps computed elsewhere (the default engine switching)', () => {
  it('a new loop waits the few turns the threads take to leave the old one, rather than sending its first step through the dispatcher', async () => {
    const STEPS = Array.from({ length: 12 }, (_, i) => i);
    const ref = reference(STEPS);
    const r = await threads(2);
    const local = createLocalEngine(r.stepper.model, getLoss(LOSS), dataset(), SEED, CONFIG.batchSize);
    const sum = new Float32Array(gradLength(r.stepper.model));
    for (const s of STEPS) {
      // Blocks of three steps in turns: the loop, then this thread (as the default engine's checks do).
      const here = Math.floor(s / 3) % 2 === 1;
      const next = s % 3 === 2 ? undefined : r.stepper.job(s + 1);
      const { result } = await runStep(here ? local : r.engine, r.stepper.job(s), r.stepper, sum, here ? undefined : next);
      expectStep(r, ref[s], result.loss, `step ${s + 1} ${here ? 'here' : 'in the loop'}`);
    }
    expect(r.engine.stats!().loop).toMatchObject({ steps: 6, fallbacks: 0 });
    expect(r.engine.stats!().steps).toBe(0); // none through the dispatcher
  });
});

describe('the step loop with AdamW: each thread updates its slice of the moments', () => {
  const ADAMW: TrainConfig = parseConfig({
    ...CONFIG, optimizer: { type: 'adamw', lr: 0.01, betas: [0.8, 0.99], weightDecay: 0.02 },
  }, 'test config');
  const STEPS = Array.from({ length: 9 }, (_, i) => i);
  const ref = reference(STEPS, ADAMW);

  it('gives one thread\'s weights, moments, update count and loss bit for bit after every step, with 2 and 3 threads', async () => {
    for (const workers of [2, 3]) {
      const r = await threads(workers, ADAMW);
      const sum = new Float32Array(gradLength(r.stepper.model));
      for (const s of STEPS) {
        const next: BatchJob | undefined = s + 1 < STEPS.length ? r.stepper.job(s + 1) : undefined;
        const { result } = await runStep(r.engine, r.stepper.job(s), r.stepper, sum, next);
        const o = r.stepper.optimizerState;
        const what = `workers ${workers}, step ${s + 1}`;
        expect(bits(r.stepper.model.params), `${what}: weights`).toEqual(ref[s].params);
        expect(bits(o.m), `${what}: m`).toEqual(ref[s].m);
        expect(bits(o.v), `${what}: v`).toEqual(ref[s].v);
        expect(o.step, `${what}: updates`).toBe(ref[s].update);
        expect(result.loss, `${what}: loss`).toBe(ref[s].loss);
      }
      expect(r.engine.stats!().loop).toMatchObject({ steps: STEPS.length, fallbacks: 0 });
    }
  });
});

