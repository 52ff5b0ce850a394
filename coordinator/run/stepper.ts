// The step sequence of a config, without files or workers: which samples
// each step takes (the (seed, epoch) permutation, cut into batches), and how
// a step's reduced sum updates the weights and the optimizer state
// (src/train/step.ts applyStep). The training loop (trainer.ts), `dptrain
// verify`, the engines' own step loops and the benches all step through it.
import type { Model } from '../../src/model/model.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { epochPermutation } from '../../src/data/sampler.js';
import { createOptimizerState, type OptimizerConfig, type OptimizerState } from '../../src/optim/optimizer.js';
import { learningRate } from '../../src/optim/schedule.js';
import { applyStep, planStep, type StepPlan, type StepResult } from '../../src/train/step.js';
import { microShardsOf, type TrainConfig } from './config.js';

export interface BatchJob {
  epoch: number;
  step: number;
  /** Dataset indices of the global batch, in order. */
  indices: Uint32Array;
  /** Micro-shards of this batch. */
  microShards: number;
}

/** What one step did: applyStep's result and the learning rate it used. */
export interface StepOutcome {
  result: StepResult;
  lr: number;
}

/** The config's model, initialized, its weights in a buffer from allocParams (the engine's choice) if given. */
export function buildTrainModel(config: TrainConfig, allocParams?: (n: number) => Float32Array): Model {
  let model: Model;
  if (allocParams !== undefined) {
    const size = buildModel(config.model).size; // the layout, to size the buffer
    model = buildModel(config.model, { params: allocParams(size) });
  } else {
    model = buildModel(config.model);
  }
  initModel(model, config.seed);
  return model;
}

/** The pure step sequence of a config: which samples each step takes and how its sum updates the weights. */
export interface Stepper {
  readonly model: Model;
  readonly plan: StepPlan;
  readonly optimizer: OptimizerConfig;
  /** The optimizer's state (velocity or moments, and the updates applied), updated by apply() or by an engine's own step. */
  readonly optimizerState: OptimizerState;
  readonly microShards: number;
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Steps this run takes (maxSteps or every epoch). */
  readonly lastStep: number;
  /** The job of 0-based step `step`. */
  job(step: number): BatchJob;
  /** The learning rate of 0-based step `step`. */
  lr(step: number): number;
  /** Applies the reduced sum of step `step` (0-based) to the model; `sum` is used as scratch. */
  apply(step: number, sum: Float32Array): StepOutcome;
}

/** The length of a run of `config` over n training samples: steps per epoch, in all epochs, and taken (maxSteps or all). */
export function runLength(config: TrainConfig, n: number): { stepsPerEpoch: number; totalSteps: number; lastStep: number } {
  const stepsPerEpoch = Math.ceil(n / config.batchSize);
  const totalSteps = config.epochs * stepsPerEpoch;
  const lastStep = config.maxSteps > 0 ? Math.min(totalSteps, config.maxSteps) : totalSteps;
  return { stepsPerEpoch, totalSteps, lastStep };
}

/** `allocState` places the optimizer state (the engine's choice, like the weights: allocParams). */
export function createStepper(config: TrainConfig, model: Model, n: number, allocState?: (n: number) => Float32Array): Stepper {
  const plan = planStep(model);
  const optimizerState = createOptimizerState(config.optimizer, model.numTrainable, allocState);
  const microShards = microShardsOf(config);
  const { stepsPerEpoch, totalSteps, lastStep } = runLength(config, n);
  let perm: Uint32Array | null = null;
  let permEpoch = -1;
  const lr = (step: number) => learningRate(config.optimizer.lr, config.schedule, config.warmupSteps, step, totalSteps);
  return {
    model, plan, optimizer: config.optimizer, optimizerState, microShards, stepsPerEpoch, totalSteps, lastStep, lr,
    job(step) {
      const epoch = Math.floor(step / stepsPerEpoch);
      const b = step % stepsPerEpoch;
      if (permEpoch !== epoch) { perm = epochPermutation(config.seed, epoch, n); permEpoch = epoch; }
      const indices = perm!.subarray(b * config.batchSize, Math.min(n, (b + 1) * config.batchSize));
      return { epoch, step, indices, microShards };
    },
    apply(step, sum) {
      const rate = lr(step);
      return { result: applyStep(model, plan, sum, config.optimizer, optimizerState, rate), lr: rate };
    },
  };
}
