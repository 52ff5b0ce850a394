// The training loop. It owns the master weights and the optimizer state
// (DESIGN.md principle 7) and asks an engine for each batch's reduced
// gradient; everything else (sampling, the step, evaluation, checkpoints,
// metrics files) happens here, in this order:
//   1. restore from a checkpoint if resuming (same config hash required);
//   2. per step: the batch's indices from the (seed, epoch) permutation,
//      the engine's reduced sum, applyStep (mean, L1/L2, SGD, statistics);
//   3. per epoch end (and on maxSteps): evaluate on the test split, append
//      to metrics.jsonl, checkpoint.
import { createHash } from 'node:crypto';
import { mkdirSync, appendFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Dataset } from '../src/data/dataset.js';
import { epochPermutation } from '../src/data/sampler.js';
import { getLoss } from '../src/losses/index.js';
import { buildModel, initModel, type Model } from '../src/model/model.js';
import { createSgdState } from '../src/optim/sgd.js';
import { learningRate } from '../src/optim/schedule.js';
import { evaluate, type Evaluation } from '../src/train/evaluate.js';
import { applyStep, gradLength, planStep } from '../src/train/step.js';
import { dptError } from '../src/errors.js';
import { microShardsOf, type TrainConfig } from './config.js';
import { bytesOf, floatsOf, hashConfig, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import type { GradientEngine } from './engine.js';
import { saveModelFile } from './model-files.js';

export interface TrainData {
  train: Dataset;
  test: Dataset;
}

export interface ProgressSink {
  start(totalSteps: number, firstStep: number): void;
  step(info: { epoch: number; step: number; loss: number; samplesPerSec: number }): void;
  epoch(info: { epoch: number; step: number; trainLoss: number; test: Evaluation }): void;
  stop(): void;
}

export interface TrainRunOptions {
  config: TrainConfig;
  data: TrainData;
  outDir: string;
  /** Continue from outDir's checkpoint. */
  resume: boolean;
  createEngine: (model: Model, data: TrainData, maxBatch: number) => Promise<GradientEngine>;
  progress: ProgressSink;
  /** Called after every step with the new weights (verify, tests). */
  onStep?: (step: number, model: Model) => void;
}

export interface RunSummary {
  steps: number;
  epochs: number;
  test: { loss: number; accuracy: number | null; f1Macro: number | null };
  trainLoss: number;
  weightsSha256: string;
  samplesPerSec: number;
  wallSeconds: number;
  workers: number;
  outDir: string;
}

export function weightsSha256(params: Float32Array): string {
  // NOTE: the bytes of a Float32Array are in the platform's order; every
  // platform Node and browsers run on here is little-endian.
  return createHash('sha256').update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest('hex');
}

/** The config fields that do not change the trajectory, left out of the resume check. */
function trajectoryConfig(config: TrainConfig): object {
  const { maxSteps: _m, checkpointEvery: _c, evalBatchSize: _e, description: _d, ...rest } = config;
  return rest;
}

export async function runTraining(opts: TrainRunOptions): Promise<RunSummary> {
  const { config, data, outDir } = opts;
  const wallStart = performance.now();
  const loss = getLoss(config.loss);
  const model = buildModel(config.model);
  checkDataFitsModel(config, model, data);
  initModel(model, config.seed);
  const plan = planStep(model);
  const sgdState = createSgdState(config.optimizer, model.numTrainable);
  const k = microShardsOf(config);
  const n = data.train.n;
  const stepsPerEpoch = Math.ceil(n / config.batchSize);
  const totalSteps = config.epochs * stepsPerEpoch;
  const lastStep = config.maxSteps > 0 ? Math.min(totalSteps, config.maxSteps) : totalSteps;
  const configHash = hashConfig(trajectoryConfig(config));

  mkdirSync(outDir, { recursive: true });
  let step = 0;
  let epochLossSum = 0;
  let epochLossCount = 0;
  let trainSeconds = 0;
  if (opts.resume) {
    const cp = readCheckpoint(outDir);
    if (cp.configHash !== configHash) {
      throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: the checkpoint was written by another config (hash ${cp.configHash.slice(0, 12)}, this config ${configHash.slice(0, 12)}); resume with the config in ${join(outDir, 'config.json')}`);
    }
    const params = floatsOf(cp.params);
    if (params.length !== model.size) throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: checkpoint holds ${params.length} parameters, the model has ${model.size}`);
    model.params.set(params);
    sgdState.velocity.set(floatsOf(cp.velocity));
    step = cp.step;
    epochLossSum = cp.epochLossSum;
    epochLossCount = cp.epochLossCount;
    trainSeconds = cp.trainSeconds;
  } else {
    writeFileSync(join(outDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    if (existsSync(join(outDir, 'metrics.jsonl'))) rmSync(join(outDir, 'metrics.jsonl'));
  }

  const checkpoint = () => writeCheckpoint(outDir, {
    format: 'dptrain-checkpoint', version: 1, configHash, config, step,
    params: bytesOf(model.params), velocity: bytesOf(sgdState.velocity),
    epochLossSum, epochLossCount, trainSeconds,
  });

  const engine = await opts.createEngine(model, data, config.batchSize);
  const sum = new Float32Array(gradLength(model));
  let lastEval: Evaluation | null = null;
  let lastTrainLoss = NaN;
  opts.progress.start(lastStep, step);
  try {
    let perm: Uint32Array | null = null;
    let permEpoch = -1;
    while (step < lastStep) {
      const epoch = Math.floor(step / stepsPerEpoch);
      const b = step % stepsPerEpoch;
      if (permEpoch !== epoch) { perm = epochPermutation(config.seed, epoch, n); permEpoch = epoch; }
      const indices = perm!.subarray(b * config.batchSize, Math.min(n, (b + 1) * config.batchSize));
      const t0 = performance.now();
      await engine.batchGradient({ epoch, step, indices, microShards: k }, sum);
      const lr = learningRate(config.optimizer.lr, config.schedule, config.warmupSteps, step, totalSteps);
      const result = applyStep(model, plan, sum, config.optimizer, sgdState, lr);
      trainSeconds += (performance.now() - t0) / 1000;
      if (!Number.isFinite(result.loss)) throw dptError('DPT_ERR_CONFIG', `training diverged at step ${step}: loss is ${result.loss}; lower optimizer.lr`);
      epochLossSum += result.dataLoss * result.samples;
      epochLossCount += result.samples;
      step++;
      opts.onStep?.(step, model);
      opts.progress.step({ epoch, step, loss: result.loss, samplesPerSec: sampleCount(step, stepsPerEpoch, config.batchSize, n) / Math.max(trainSeconds, 1e-9) });
      const epochEnd = step % stepsPerEpoch === 0 || step === lastStep;
      if (epochEnd) {
        lastTrainLoss = epochLossSum / Math.max(1, epochLossCount);
        lastEval = evaluate(model, loss, data.test, config.evalBatchSize);
        const line = {
          epoch: epoch + 1, step, trainLoss: lastTrainLoss,
          test: { loss: lastEval.loss, accuracy: lastEval.accuracy ?? null, f1Macro: lastEval.f1Macro ?? null },
          lr, trainSeconds,
        };
        appendFileSync(join(outDir, 'metrics.jsonl'), JSON.stringify(line) + '\n');
        opts.progress.epoch({ epoch: epoch + 1, step, trainLoss: lastTrainLoss, test: lastEval });
        epochLossSum = 0;
        epochLossCount = 0;
        checkpoint();
      } else if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) {
        checkpoint();
      }
    }
  } finally {
    opts.progress.stop();
    await engine.close();
  }
  if (lastEval === null) lastEval = evaluate(model, loss, data.test, config.evalBatchSize);
  saveModelFile(join(outDir, 'model.dptmodel'), model, { loss: config.loss });
  const samples = sampleCount(lastStep, stepsPerEpoch, config.batchSize, n);
  return {
    steps: lastStep,
    epochs: lastStep / stepsPerEpoch,
    test: { loss: lastEval.loss, accuracy: lastEval.accuracy ?? null, f1Macro: lastEval.f1Macro ?? null },
    trainLoss: lastTrainLoss,
    weightsSha256: weightsSha256(model.params),
    samplesPerSec: samples / Math.max(trainSeconds, 1e-9),
    wallSeconds: (performance.now() - wallStart) / 1000,
    workers: engine.workers,
    outDir,
  };
}

/** Training samples in the first `steps` steps. */
function sampleCount(steps: number, stepsPerEpoch: number, batch: number, n: number): number {
  const full = Math.floor(steps / stepsPerEpoch);
  const rest = steps % stepsPerEpoch;
  return full * n + Math.min(n, rest * batch);
}

function checkDataFitsModel(config: TrainConfig, model: Model, data: TrainData): void {
  const xs = data.train.xShape;
  const inShape = model.inShape;
  if (xs.length !== inShape.length || xs.some((d, i) => d !== inShape[i])) {
    throw dptError('DPT_ERR_SHAPE', `model.inputShape is [${inShape.join(', ')}] but the dataset's samples are [${xs.join(', ')}]` +
      (config.data.type === 'mnist' ? ' (mnist: use inputShape [784] with view "flat", [28, 28] with view "rows")' : ''));
  }
  const classes = data.train.numClasses;
  if (data.train.yShape.length === 0 && classes !== undefined && model.outSize !== classes) {
    throw dptError('DPT_ERR_SHAPE', `the model outputs ${model.outSize} values per sample but the dataset has ${classes} classes; make the last layer's units ${classes}`);
  }
}
