// train() of the library: a run from a config object (or file) and the
// command line's options by their camelCase names, through the very code
// `dptrain train` runs (train-run.ts): the same checks and errors, run
// folder, checkpoints, resume, worker threads and network workers
// (`listen`). Progress comes as typed events instead of a progress bar; a
// stop request is an AbortSignal instead of SIGINT. The result carries the
// trained model, loaded back from the model file the run wrote.
import { join } from 'node:path';
import * as z from 'zod';
import type { DptrainModel } from '../../src/api/model.js';
import { formatZodError, plainIssueMessage } from '../../src/check/zod-format.js';
import { dptError } from '../../src/errors.js';
import { wholeNonNeg, wholePos, type TrainConfigInput } from '../run/config.js';
import { API_OPTION_NAMES } from '../run/option-names.js';
import { MODEL_FILE } from '../run/run-folder.js';
import { runTrainRequest } from '../run/train-run.js';
import type { ProgressSink, RunSummary } from '../run/trainer.js';
import { ensureKernels } from './kernels.js';
import { loadModelFile } from './model-files.js';

/** Test metrics after an epoch (accuracy and macro-F1 for class labels, else null). */
export interface TestMetrics {
  loss: number;
  accuracy: number | null;
  f1Macro: number | null;
}

/** What a run reports while it trains; epochs count from 1, steps are the steps done. */
export type TrainProgress =
  /** workers: the worker threads, 0 for this thread; null while the default engine has not measured (a `note` says what it chose). */
  | { type: 'start'; totalSteps: number; firstStep: number; workers: number | null }
  | { type: 'step'; epoch: number; step: number; loss: number; samplesPerSec: number }
  | { type: 'epoch'; epoch: number; step: number; trainLoss: number; test: TestMetrics }
  | { type: 'checkpoint'; step: number; file: string }
  | { type: 'note'; message: string };

const text = z.string().min(1);

export const TrainOptions = z.strictObject({
  /** The config as a value (the fields of a config file), or the path of a config file. */
  config: z.union([text, z.custom<TrainConfigInput>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
    error: 'must be a config object or the path of a config file',
  })]).optional(),
  /** Where relative paths in a config object resolve (CSV files; default: the working directory). */
  baseDir: text.optional(),
  // The config fields an option overrides, as on the command line.
  epochs: wholePos.optional(),
  seed: wholeNonNeg.optional(),
  maxSteps: wholeNonNeg.optional(),
  checkpointEvery: wholeNonNeg.optional(),
  /** Worker threads; 0 computes in this thread (default: one per core, none with listen). */
  workers: wholeNonNeg.optional(),
  stepTimeoutMs: wholeNonNeg.optional(),
  chaos: z.string().optional(),
  /** The run folder (default runs/<config>-<time>); a new run needs it missing or empty unless force. */
  out: text.optional(),
  /** Continue the run in this folder from its checkpoint. */
  resume: text.optional(),
  /** With out: continue the run there if it holds a checkpoint of this config, else start it there. */
  autoResume: z.boolean().optional(),
  /** Start a new run in a folder that is not empty, replacing its run files. */
  force: z.boolean().optional(),
  /** Also accept network workers (dptrain worker, browser tabs) on HOST:PORT, as a cluster's coordinator. */
  listen: text.optional(),
  /** With listen: start once this many workers (threads included) are connected (default 1). */
  minWorkers: wholePos.optional(),
  /** With listen: the shared token workers must give (default: $DPTRAIN_TOKEN, or none). */
  token: text.optional(),
  tokenFile: text.optional(),
  /** With listen: a read-only token for the dashboard, /live and /metrics (default: $DPTRAIN_VIEWER_TOKEN; off loopback, one is made). */
  viewerToken: text.optional(),
  viewerTokenFile: text.optional(),
  /** With listen: anyone who reaches the port may watch (read-only), no credential. */
  publicDashboard: z.boolean().optional(),
  /** With listen: PEM files to serve https and wss. */
  tlsCert: text.optional(),
  tlsKey: text.optional(),
  /** With listen: disconnect a worker silent this long (default 5000). */
  peerTimeoutMs: z.number().int().min(100).optional(),
  /** Called with every progress event. */
  onProgress: z.custom<(event: TrainProgress) => void>((v) => typeof v === 'function', { error: 'must be a function' }).optional(),
  /** Stops the run cleanly between steps (with a checkpoint): the result is then 'interrupted'. */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { error: 'must be an AbortSignal' }).optional(),
});
export type TrainOptions = z.input<typeof TrainOptions>;

/** A finished run: the model and the figures `dptrain train --json` prints (workers: how many took part). */
export interface TrainSummary extends Omit<RunSummary, 'workerStats'> {
  status: 'finished';
  /** The trained model, read back from modelFile. */
  model: DptrainModel;
  modelFile: string;
}

/** A run stopped by its signal: resume it with `resume: outDir`. */
export interface TrainInterrupted {
  status: 'interrupted';
  /** Steps done; the checkpoint in outDir holds them. */
  step: number;
  outDir: string;
}

export type TrainResult = TrainSummary | TrainInterrupted;

function progressSink(emit: (event: TrainProgress) => void): ProgressSink {
  return {
    start: (totalSteps, firstStep, workers) => emit({ type: 'start', totalSteps, firstStep, workers: workers === 'auto' ? null : workers ?? null }),
    step: (i) => emit({ type: 'step', epoch: i.epoch + 1, step: i.step, loss: i.loss, samplesPerSec: i.samplesPerSec }),
    epoch: (i) => emit({
      type: 'epoch', epoch: i.epoch, step: i.step, trainLoss: i.trainLoss,
      test: { loss: i.test.loss, accuracy: i.test.accuracy ?? null, f1Macro: i.test.f1Macro ?? null },
    }),
    checkpoint: (i) => emit({ type: 'checkpoint', step: i.step, file: i.file }),
    note: (line) => emit({ type: 'note', message: line }),
    stop: () => {},
  };
}

/** Trains a model as `dptrain train` does; resolves when the run ends (or stops on `signal`). */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const r = TrainOptions.safeParse(options, { error: plainIssueMessage });
  if (!r.success) throw dptError('DPT_ERR_USAGE', formatZodError(r.error, 'train options'));
  const { onProgress, signal, ...request } = r.data;
  const emit = onProgress ?? (() => {});
  ensureKernels();
  const outcome = await runTrainRequest(request, {
    progress: progressSink(emit), stopSignal: signal,
    notice: (message) => emit({ type: 'note', message }),
    warn: (message) => emit({ type: 'note', message: `warning: ${message}` }),
    names: API_OPTION_NAMES,
  });
  if ('interrupted' in outcome) return { status: 'interrupted', step: outcome.step, outDir: outcome.outDir };
  const { workerStats: _workerStats, ...summary } = outcome;
  const modelFile = join(outcome.outDir, MODEL_FILE);
  return { status: 'finished', model: loadModelFile(modelFile), modelFile, ...summary };
}
