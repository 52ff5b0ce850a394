// The training loop. It owns the master weights and the optimizer state
// (docs/design.md principle 7) and asks an engine for each batch's reduced
// gradient; everything else (sampling, the step, evaluation, checkpoints,
// metrics files) happens here, in this order:
//   1. restore from a checkpoint if resuming (same config hash required);
//   2. per step: the batch's indices from the (seed, epoch) permutation,
//      the engine's reduced sum, applyStep (mean, L1/L2, SGD, statistics);
//   3. per epoch end (and on maxSteps): evaluate on the test split, append
//      to metrics.jsonl, checkpoint; also every checkpointEvery steps. A
//      stop at maxSteps in the middle of an epoch keeps that epoch's loss
//      sums in the checkpoint, so a resumed run logs the whole epoch;
//   4. on a stop request (opts.stopSignal, checked between steps; a step in
//      flight is abandoned): checkpoint, and return as interrupted. Steps
//      computed in this thread run synchronously, so the loop gives the
//      event loop a turn at least every TURN_MS: else a SIGINT or SIGTERM
//      handler (or a timer aborting the API's signal) would not run before
//      the run's end.
// The step's math without the files is stepper.ts, shared with `dptrain
// verify`, the engines and the benches.
import { allocFloats } from '../../src/tensor/alloc.js';
import { activeKernelName } from '../../src/tensor/setup.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Dataset } from '../../src/data/dataset.js';
import { getLoss } from '../../src/losses/index.js';
import type { Model } from '../../src/model/model.js';
import { evaluate, type Evaluation } from '../../src/train/evaluate.js';
import { gradLength } from '../../src/train/step.js';
import { dptError } from '../../src/errors.js';
import type { InferenceInfo } from '../../src/model/inference-info.js';
import type { TrainConfig } from './config.js';
import { bytesOf, CHECKPOINT_FILE, floatsOf, hashConfig, readCheckpoint, writeCheckpoint, type Checkpoint } from './checkpoint.js';
import { stateArrays } from '../../src/optim/optimizer.js';
import { runStep, type EngineOutcome, type GradientEngine, type TopologyReport, type WorkersChoice, type WorkerSummary } from '../engines/engine.js';
import { buildTrainModel, createStepper, type Stepper, type StepOutcome } from './stepper.js';
import { saveModelFile } from './model-files.js';
import { unlessAborted } from './interrupt.js';
import { appendLine } from './output-paths.js';
import { hasRunConfig, keepCompletedEpochMetrics, METRICS_FILE, MODEL_FILE, startRunFolder, writeRunConfig } from './run-folder.js';

export interface TrainData {
  train: Dataset;
  test: Dataset;
}

export interface ProgressSink {
  /** `workers`: the engine's worker count, 'auto' while the default engine has not chosen yet. */
  start(totalSteps: number, firstStep: number, workers?: number | 'auto'): void;
  step(info: { epoch: number; step: number; loss: number; samplesPerSec: number }): void;
  epoch(info: { epoch: number; step: number; trainLoss: number; test: Evaluation }): void;
  /** A checkpoint was written (after `step` steps). */
  checkpoint?(info: { step: number; file: string }): void;
  /** A one-line note from the engine (faults, stalls). */
  note?(line: string): void;
  stop(): void;
}

export interface TrainRunOptions {
  config: TrainConfig;
  data: TrainData;
  outDir: string;
  /** Continue from outDir's checkpoint. */
  resume: boolean;
  /** A zeroed buffer for the master weights, where the engine's workers read them best (default: a plain array). */
  allocParams?: (n: number) => Float32Array;
  createEngine: (model: Model, data: TrainData, maxBatch: number, stopSignal?: AbortSignal) => Promise<GradientEngine>;
  progress: ProgressSink;
  /** Called after every step with the new weights (verify, tests). */
  onStep?: (step: number, model: Model) => void;
  /** A stop request, checked between steps: the run checkpoints and returns an InterruptedRun. */
  stopSignal?: AbortSignal;
  /** Saved with the model: what inference needs (feature names, input scaling, class names). */
  inference?: InferenceInfo;
}

/** A run stopped by its stopSignal: the checkpoint in outDir holds `step` steps. */
export interface InterruptedRun {
  interrupted: true;
  step: number;
  outDir: string;
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
  /** The kernels computed with: 'wasm-simd' or 'typescript' (LSTM/GRU bits differ between them). */
  kernels: string;
  outDir: string;
  /** Every worker that took part (threads, processes, tabs) with its figures; empty for --workers 0. */
  workerStats: WorkerSummary[];
  /** Without a worker count: what the run chose between worker threads and the coordinator's thread, and why. */
  workersChoice?: WorkersChoice;
  /** With network workers: which topology reduced the steps, and why (the collective engine). */
  topology?: TopologyReport;
}

export function weightsSha256(params: Float32Array): string {
  // NOTE: the bytes of a Float32Array are in the platform's order; every
  // platform Node and browsers run on here is little-endian.
  return createHash('sha256').update(new Uint8Array(params.buffer, params.byteOffset, params.byteLength)).digest('hex');
}

/**
 * The config fields that do not change the trajectory, left out of the
 * resume check: run length, checkpoint cadence, evaluation batch, and how
 * the work is spread (workers, timeouts, injected faults: by design none of
 * them changes a bit).
 */
export function trajectoryConfig(config: TrainConfig): object {
  const {
    maxSteps: _m, checkpointEvery: _c, evalBatchSize: _e, description: _d,
    workers: _w, stepTimeoutMs: _t, chaos: _x, topology: _o, replicaCheckEvery: _r, gradWire, ...rest
  } = config;
  // bf16 changes the bits; f32, the default, leaves the hash of configs written before the option as it was.
  return gradWire === 'f32' ? rest : { ...rest, gradWire };
}

export async function runTraining(opts: TrainRunOptions): Promise<RunSummary | InterruptedRun> {
  const { config, data, outDir } = opts;
  const wallStart = performance.now();
  const loss = getLoss(config.loss);
  const model = buildTrainModel(config, opts.allocParams);
  checkDataFitsModel(config, model, data);
  const n = data.train.n;
  const stepper = createStepper(config, model, n, opts.allocParams);
  const { stepsPerEpoch, lastStep } = stepper;
  const configHash = hashConfig(trajectoryConfig(config));

  let step = 0;
  let epochLossSum = 0;
  let epochLossCount = 0;
  let trainSeconds = 0;
  let checkpointedStep = -1;
  const checkpoint = (announce = true) => {
    writeCheckpoint(outDir, {
      format: 'dptrain-checkpoint', version: 1, configHash, config, step,
      params: bytesOf(model.params), ...optimizerBytes(stepper),
      epochLossSum, epochLossCount, trainSeconds, kernels: activeKernelName(),
    });
    checkpointedStep = step;
    if (announce) opts.progress.checkpoint?.({ step, file: join(outDir, CHECKPOINT_FILE) });
  };
  if (opts.resume) {
    const cp = readCheckpoint(outDir);
    if (cp.configHash !== configHash) {
      throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: the checkpoint was written by another config (hash ${cp.configHash.slice(0, 12)}, this config ${configHash.slice(0, 12)}); resume with the config in ${join(outDir, 'config.json')}`);
    }
    if (cp.kernels !== undefined && cp.kernels !== activeKernelName()) {
      const flag = cp.kernels === 'typescript' ? 'ts' : 'wasm';
      throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: the run computed with the ${cp.kernels} kernels, this one would use ${activeKernelName()}, ` +
        `which gives recurrent layers other bits; resume with --kernels ${flag}`);
    }
    const params = floatsOf(cp.params);
    if (params.length !== model.size) throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: checkpoint holds ${params.length} parameters, the model has ${model.size}`);
    model.params.set(params);
    restoreOptimizer(stepper, cp, outDir);
    if (cp.step > lastStep) {
      throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: the checkpoint is at step ${cp.step}, past this run's last step ${lastStep} (maxSteps ${config.maxSteps}); ` +
        `resume with a larger --max-steps, or --max-steps 0 to train every epoch`);
    }
    step = cp.step;
    epochLossSum = cp.epochLossSum;
    epochLossCount = cp.epochLossCount;
    trainSeconds = cp.trainSeconds;
    checkpointedStep = step;
    keepCompletedEpochMetrics(outDir, step, stepsPerEpoch, lastStep);
    if (!hasRunConfig(outDir)) writeRunConfig(outDir, config);
  }

  const engine = await opts.createEngine(model, data, config.batchSize, opts.stopSignal);
  const sum = allocFloats(gradLength(model)); // where the vector kernels use it in place
  let lastEval: Evaluation | null = null;
  // Rows per evaluation pass: evalBatchSize, or what evaluate() found fits the kernels' memory (said once).
  let evalRows = config.evalBatchSize;
  const evaluateTest = (): Evaluation => {
    const e = evaluate(model, loss, data.test, evalRows);
    if (e.batchSize < evalRows) {
      opts.progress.note?.(`evaluation: ${evalRows} rows at a time do not fit the kernels' WebAssembly memory; evaluating ${e.batchSize} at a time (set evalBatchSize to ${e.batchSize} or less to skip the attempt)`);
      evalRows = e.batchSize;
    }
    return e;
  };
  let lastTrainLoss = NaN;
  // Stopped while the engine started (waiting for network workers): nothing trains, nothing to announce.
  // The default engine says where it trains once it has measured (a `workers:` line), not before.
  const undecided = engine.choice !== undefined && engine.choice() === undefined;
  if (opts.stopSignal?.aborted !== true) opts.progress.start(lastStep, step, undecided ? 'auto' : engine.workers);
  let outcome: EngineOutcome = { kind: 'finished', reason: 'the run is finished' };
  let engineClosed = false;
  const closeEngine = async (o: EngineOutcome) => {
    if (engineClosed) return;
    engineClosed = true;
    await engine.close(o);
  };
  try {
    if (!opts.resume) {
      // Once the engine is up (a failure to start leaves no folder behind), the step-0 checkpoint
      // first: from the moment the folder holds anything, it can be resumed.
      startRunFolder(outDir);
      checkpoint(false);
      writeRunConfig(outDir, config);
    }
    let lastTurn = performance.now();
    while (step < lastStep && opts.stopSignal?.aborted !== true) {
      const job = stepper.job(step);
      const t0 = performance.now();
      let stepped: StepOutcome | undefined;
      const next = step + 1 < lastStep ? stepper.job(step + 1) : undefined;
      const work = runStep(engine, job, stepper, sum, next).then((o) => { stepped = o; });
      if (!(await unlessAborted(work, opts.stopSignal))) {
        // Stopped mid-step: the engine stops first. A step its workers finish meanwhile (threads that
        // were already writing its weights) counts; one they do not is abandoned.
        await closeEngine(INTERRUPTED);
        await work.catch(() => {});
        if (stepped === undefined) break;
      }
      const { result, lr } = stepped!;
      const stepSeconds = (performance.now() - t0) / 1000;
      trainSeconds += stepSeconds;
      engine.stepDone?.({ seconds: stepSeconds, samples: result.samples, loss: result.loss });
      if (!Number.isFinite(result.loss)) throw dptError('DPT_ERR_DIVERGED', `training diverged at step ${step + 1}: loss is ${result.loss}; lower optimizer.lr`);
      epochLossSum += result.dataLoss * result.samples;
      epochLossCount += result.samples;
      step++;
      opts.onStep?.(step, model);
      opts.progress.step({ epoch: job.epoch, step, loss: result.loss, samplesPerSec: sampleCount(step, stepsPerEpoch, config.batchSize, n) / Math.max(trainSeconds, 1e-9) });
      const epochEnd = step % stepsPerEpoch === 0;
      if (epochEnd || step === lastStep) {
        lastTrainLoss = epochLossSum / Math.max(1, epochLossCount);
        lastEval = evaluateTest();
        const line = {
          epoch: job.epoch + 1, step, trainLoss: lastTrainLoss,
          test: { loss: lastEval.loss, accuracy: lastEval.accuracy ?? null, f1Macro: lastEval.f1Macro ?? null },
          lr, trainSeconds,
        };
        appendLine(join(outDir, METRICS_FILE), JSON.stringify(line), 'the metrics file');
        opts.progress.epoch({ epoch: job.epoch + 1, step, trainLoss: lastTrainLoss, test: lastEval });
        if (epochEnd) {
          epochLossSum = 0;
          epochLossCount = 0;
        }
        checkpoint();
      } else if (config.checkpointEvery > 0 && step % config.checkpointEvery === 0) {
        checkpoint();
      }
      if (performance.now() - lastTurn >= TURN_MS) {
        await nextTurn();
        lastTurn = performance.now();
      }
    }
  } catch (err) {
    outcome = { kind: 'failed', reason: `the run failed: ${(err as Error).message.split('\n')[0]}` };
    throw err;
  } finally {
    opts.progress.stop();
    // Interrupted: network workers are asked to come back to the resumed run.
    if (opts.stopSignal?.aborted === true && outcome.kind === 'finished') outcome = INTERRUPTED;
    await closeEngine(outcome);
  }
  if (step < lastStep) {
    // Stopped on request: the weights are those after `step` steps (a step in flight was abandoned).
    if (checkpointedStep !== step) checkpoint();
    return { interrupted: true, step, outDir };
  }
  // Every worker that took part (one that reconnected counts again), or 0 for the coordinator's own thread.
  const workers = engine.summaries?.().length ?? engine.workers;
  if (lastEval === null) lastEval = evaluateTest();
  // steps: the training steps the model took (the PyTorch export's BatchNorm num_batches_tracked).
  saveModelFile(join(outDir, MODEL_FILE), model, { loss: config.loss, steps: String(lastStep) }, opts.inference);
  const samples = sampleCount(lastStep, stepsPerEpoch, config.batchSize, n);
  return {
    steps: lastStep,
    epochs: lastStep / stepsPerEpoch,
    test: { loss: lastEval.loss, accuracy: lastEval.accuracy ?? null, f1Macro: lastEval.f1Macro ?? null },
    trainLoss: lastTrainLoss,
    weightsSha256: weightsSha256(model.params),
    samplesPerSec: samples / Math.max(trainSeconds, 1e-9),
    wallSeconds: (performance.now() - wallStart) / 1000,
    workers,
    kernels: activeKernelName(),
    outDir,
    workerStats: engine.summaries?.() ?? [],
    ...(engine.choice?.() === undefined ? {} : { workersChoice: engine.choice()! }),
    ...(engine.topology === undefined ? {} : { topology: engine.topology() }),
  };
}

/**
 * The longest the loop goes without a turn of the event loop. A turn costs
 * about 2 us (setImmediate); an MLP step in this thread takes ~3 ms (a turn
 * per step: under 0.1%), the CSV example's 0.03 ms (a turn every ~30 steps).
 */
const TURN_MS = 1;

/** A turn of the event loop: signal handlers, timers and sockets run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The optimizer's state as checkpoint fields: the velocity (empty if none), Adam's m and v, the update count. */
function optimizerBytes(stepper: Stepper): Pick<Checkpoint, 'velocity' | 'm' | 'v' | 'optimizerStep'> {
  const s = stepper.optimizerState;
  return {
    velocity: bytesOf(s.velocity),
    ...(s.m.length > 0 ? { m: bytesOf(s.m), v: bytesOf(s.v) } : {}),
    optimizerStep: s.step,
  };
}

/** Puts a checkpoint's optimizer state back (each array the optimizer uses, of the model's size). */
function restoreOptimizer(stepper: Stepper, cp: Checkpoint, outDir: string): void {
  const state = stepper.optimizerState;
  for (const { name, array } of stateArrays(stepper.optimizer, state)) {
    const saved = cp[name];
    const floats = saved === undefined ? null : floatsOf(saved);
    if (floats === null || floats.length !== array.length) {
      throw dptError('DPT_ERR_CHECKPOINT', `${outDir}: the checkpoint has no optimizer state '${name}' of ${array.length} floats (it holds ${floats?.length ?? 'none'})`);
    }
    array.set(floats);
  }
  state.step = cp.optimizerStep ?? cp.step;
}

const INTERRUPTED: EngineOutcome = { kind: 'interrupted', reason: 'the coordinator was stopped; it resumes with --resume' };

/** Training samples in the first `steps` steps. */
function sampleCount(steps: number, stepsPerEpoch: number, batch: number, n: number): number {
  const full = Math.floor(steps / stepsPerEpoch);
  const rest = steps % stepsPerEpoch;
  return full * n + Math.min(n, rest * batch);
}

export function checkDataFitsModel(config: TrainConfig, model: Model, data: TrainData): void {
  const xs = data.train.xShape;
  const inShape = model.inShape;
  if (xs.length !== inShape.length || xs.some((d, i) => d !== inShape[i])) {
    throw dptError('DPT_ERR_SHAPE', `model.inputShape is [${inShape.join(', ')}] but the dataset's samples are [${xs.join(', ')}]` +
      (config.data.type === 'mnist' ? ' (mnist: use inputShape [784] with view "flat", [28, 28] with view "rows", [1, 28, 28] with view "image")' : ''));
  }
  const classes = data.train.numClasses;
  if (data.train.yShape.length === 0 && classes !== undefined && model.outSize !== classes) {
    throw dptError('DPT_ERR_SHAPE', `the model outputs ${model.outSize} values per sample but the dataset has ${classes} classes; make the last layer's units ${classes}`);
  }
}
