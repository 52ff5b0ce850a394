// The default engine switching between the coordinator's thread and real
// worker threads (the step loop) while the run goes on changes no bit: the
// weights and the optimizer state after every step are those of one thread
// computing every step. A scripted clock makes the threads look fast, then
// slow (another process took a core), then fast again, so the engine
// switches there and back more than once in one run.
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type TrainConfig } from '../../coordinator/run/config.js';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { runStep, type GradientEngine } from '../../coordinator/engines/engine.js';
import { createAutoEngine } from '../../coordinator/engines/auto.js';
import { localOnCopy } from '../../coordinator/engines/choose.js';
import { createDispatchEngine } from '../../coordinator/engines/dispatch-engine.js';
import { createLocalEngine } from '../../coordinator/engines/local.js';
import { createStepLoopEngine } from '../../coordinator/engines/step-loop.js';
import { sharedParams, startThreadTransport, wholeShared } from '../../node/threads/transport.js';
import { buildTrainModel, createStepper } from '../../coordinator/run/stepper.js';
import { getLoss } from '../../src/losses/index.js';
import { gradLength } from '../../src/train/step.js';
import { bits, dataset, LOSS, N, SEED, SPEC } from '../helpers/synthetic.js';

const CONFIG: TrainConfig = parseConfig({
  seed: SEED, data: { type: 'mnist', view: 'flat' }, model: SPEC, loss: LOSS,
  optimizer: { lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }, schedule: { type: 'cosine' },
  epochs: 200, batchSize: 23, microShards: 7,
}, 'test config');

const open: GradientEngine[] = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()!.close();
});

describe('the default engine switching engines mid-run', () => {
  it('changes no bit: every step\'s weights and velocity equal one thread\'s', async () => {
    // The run as the default engine sets it up: weights and optimizer state on shared memory, the threads' step loop,
    // and the coordinator's thread on a copy.
    const model = buildTrainModel(CONFIG, sharedParams);
    const stepper = createStepper(CONFIG, model, N, sharedParams);
    const train = wholeShared(dataset());
    const dispatcher = new Dispatcher({ gradLen: gradLength(model), stepTimeoutMs: 0, log: () => {} });
    const weights = { version: 0, params: model.params };
    const transport = await startThreadTransport({
      threads: 2, dispatcher, board: weights, model: CONFIG.model, loss: LOSS, seed: SEED, session: 'auto-switch-test',
      train, maxBatch: CONFIG.batchSize, log: () => {},
    });
    const general = createDispatchEngine(dispatcher, weights, () => transport.close());
    const loop = createStepLoopEngine({ lanes: transport.steps!, general, weights, model, stepTimeoutMs: 0, log: () => {} });
    const local = localOnCopy(model, CONFIG, { train, test: train }, CONFIG.batchSize);

    // The clock: each step takes what the script says for the engine that computes it.
    let now = 0;
    let pending = 0;
    let step = 0;
    const threadsMs = () => (step >= 500 && step < 700 ? 3.0 : 0.5);
    const which: ('local' | 'threads')[] = [];
    const timed = (engine: GradientEngine, side: 'local' | 'threads', ms: () => number): GradientEngine => ({
      ...engine,
      async batchGradient(job, out) { which[job.step] = side; pending = ms(); await engine.batchGradient(job, out); },
      ...(engine.step === undefined ? {} : {
        async step(job, s, next) { which[job.step] = side; pending = ms(); return engine.step!(job, s, next); },
      }),
      close: (o) => engine.close(o),
    });
    const log: string[] = [];
    const auto = createAutoEngine(timed(local, 'local', () => 1.0), 2, async () => timed(loop, 'threads', threadsMs), gradLength(model),
      (line) => log.push(line), { now: () => (now += pending, pending = 0, now) });
    open.push(auto);

    // One thread, every step: the reference.
    const ref = buildTrainModel(CONFIG);
    const refStepper = createStepper(CONFIG, ref, N);
    const refEngine = createLocalEngine(ref, getLoss(LOSS), dataset(), SEED, CONFIG.batchSize);
    const refSum = new Float32Array(gradLength(ref));
    const sum = new Float32Array(gradLength(model));

    const last = Math.min(stepper.lastStep, 1000);
    for (step = 0; step < last; step++) {
      const next = step + 1 < last ? stepper.job(step + 1) : undefined;
      await runStep(auto, stepper.job(step), stepper, sum, next);
      await refEngine.batchGradient(refStepper.job(step), refSum);
      refStepper.apply(step, refSum);
      if (step % 10 === 9 || step === last - 1) {
        expect(bits(model.params), `weights after step ${step + 1}`).toEqual(bits(ref.params));
        expect(bits(stepper.optimizerState.velocity), `velocity after step ${step + 1}`).toEqual(bits(refStepper.optimizerState.velocity));
      }
    }
    // Threads, then the coordinator's thread while they were slow, then the threads again.
    expect(log.map((l) => /training (on the 2 threads|in the coordinator's thread)/.exec(l)?.[1])).toEqual(
      ['on the 2 threads', "in the coordinator's thread", 'on the 2 threads']);
    expect(which.filter((s) => s === 'threads').length).toBeGreaterThan(300);
    expect(which.filter((s) => s === 'local').length).toBeGreaterThan(200);
  });
});
