// `dptrain verify`: the check DDP's own tests run, as a command. The config
// is trained twice side by side, step by step from the same initial weights:
// once in the coordinator's thread (--workers 0) and once on N worker
// threads. After every step the two weight vectors (trainable parameters
// and statistics) are compared bit for bit; the first difference is named
// by step and parameter (`layers.0.dense.W[123]`).
import { entryName, type Model } from '../../../src/model/model.js';
import { getLoss } from '../../../src/losses/index.js';
import { gradLength } from '../../../src/train/step.js';
import type { TrainConfig } from '../../run/config.js';
import { runStep } from '../../engines/engine.js';
import { createLocalEngine } from '../../engines/local.js';
import { chooseEngine } from '../../engines/choose.js';
import { checkDataFitsModel, weightsSha256, type TrainData } from '../../run/trainer.js';
import { buildTrainModel, createStepper } from '../../run/stepper.js';

export interface Difference {
  /** 1-based step after which the weights first differ. */
  step: number;
  /** e.g. `layers.0.dense.W[123]` (index within the tensor, row-major). */
  param: string;
  /** Index in the flat parameter vector. */
  flatIndex: number;
  /** The value in one thread and with the worker threads. */
  single: number;
  parallel: number;
}

export interface VerifyReport {
  agree: boolean;
  /** Steps compared (up to and including the first difference). */
  steps: number;
  workers: number;
  firstDifference: Difference | null;
  /** SHA-256 of the final weights when they agree. */
  weightsSha256: string | null;
}

export interface VerifyOptions {
  config: TrainConfig;
  data: TrainData;
  workers: number;
  /** Steps to compare (capped at the run's length). */
  steps: number;
  log?: (line: string) => void;
  /** After each compared step (progress). */
  onStep?: (step: number, total: number) => void;
}

/** The first parameter whose bits differ, or null. */
export function firstDifference(model: Model, a: Float32Array, b: Float32Array): { flatIndex: number; param: string } | null {
  const ua = new Uint32Array(a.buffer, a.byteOffset, model.size);
  const ub = new Uint32Array(b.buffer, b.byteOffset, model.size);
  for (let i = 0; i < model.size; i++) {
    if (ua[i] !== ub[i]) {
      const e = model.entries.find((en) => i >= en.offset && i < en.offset + en.size)!;
      return { flatIndex: i, param: `${entryName(e)}[${i - e.offset}]` };
    }
  }
  return null;
}

export async function runVerify(opts: VerifyOptions): Promise<VerifyReport> {
  const { config, workers } = opts;
  const choice = chooseEngine(config, workers, opts.log ?? (() => {}));
  const data = choice.prepare(opts.data);
  const single = buildTrainModel(config);
  const parallel = buildTrainModel(config, choice.allocParams);
  checkDataFitsModel(config, single, data);
  const stepperS = createStepper(config, single, data.train.n);
  const stepperP = createStepper(config, parallel, data.train.n, choice.allocParams);
  const steps = Math.min(opts.steps, stepperS.lastStep);
  const engineS = createLocalEngine(single, getLoss(config.loss), data.train, config.seed, config.batchSize, config.gradWire);
  const engineP = await choice.create(parallel, data, config.batchSize);
  const sumS = new Float32Array(gradLength(single));
  const sumP = new Float32Array(gradLength(parallel));
  try {
    for (let step = 0; step < steps; step++) {
      // The threads work while this thread computes the reference.
      const next = step + 1 < steps ? stepperP.job(step + 1) : undefined;
      const pending = runStep(engineP, stepperP.job(step), stepperP, sumP, next);
      await runStep(engineS, stepperS.job(step), stepperS, sumS);
      await pending;
      const diff = firstDifference(single, single.params, parallel.params);
      opts.onStep?.(step + 1, steps);
      if (diff !== null) {
        return {
          agree: false, steps: step + 1, workers,
          firstDifference: { step: step + 1, ...diff, single: single.params[diff.flatIndex], parallel: parallel.params[diff.flatIndex] },
          weightsSha256: null,
        };
      }
    }
  } finally {
    await engineS.close();
    await engineP.close();
  }
  return { agree: true, steps, workers, firstDifference: null, weightsSha256: weightsSha256(single.params) };
}

export function formatVerify(r: VerifyReport): string {
  const who = `1 thread vs ${r.workers} worker thread${r.workers === 1 ? '' : 's'}`;
  if (r.agree) return `verify: ${r.steps} steps, ${who}: the weights agree bit for bit after every step (sha256 ${r.weightsSha256})`;
  const d = r.firstDifference!;
  return `verify: ${who}: the weights differ after step ${d.step}` + (d.step > 1 ? ` (steps 1-${d.step - 1} agreed)` : '') +
    `: first at ${d.param} (flat index ${d.flatIndex}): ${d.single} in one thread, ${d.parallel} with ${r.workers} worker thread${r.workers === 1 ? '' : 's'}`;
}
