// Which gradient engine a run uses: `--workers 0` computes in the
// coordinator's thread (engine.ts), `--workers N` on N worker threads
// (engine-threads.ts). Wiring only.
import { availableParallelism } from 'node:os';
import { getLoss } from '../src/losses/index.js';
import type { Model } from '../src/model/model.js';
import { dptError } from '../src/errors.js';
import { checkChaosWorkers, parseChaos, type Fault } from './chaos.js';
import { hashConfig } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { createLocalEngine, type GradientEngine } from './engine.js';
import { createThreadEngine, wholeShared } from './engine-threads.js';
import type { TrainData } from './trainer.js';

/** Worker threads when neither --workers nor the config says: one per core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

export interface EngineChoice {
  workers: number;
  /** The coordinator's weights must live on a SharedArrayBuffer. */
  sharedWeights: boolean;
  /** The data as this engine wants it: for threads, the training set moved onto shared memory once. */
  prepare(data: TrainData): TrainData;
  create(model: Model, data: TrainData, maxBatch: number): Promise<GradientEngine>;
}

/** The faults of the config's chaos SPEC, checked against the worker count (DPT_ERR_USAGE). */
export function chaosOf(config: TrainConfig, workers: number): Fault[] {
  let faults: Fault[];
  try {
    faults = config.chaos === undefined ? [] : parseChaos(config.chaos);
  } catch (err) {
    throw dptError('DPT_ERR_USAGE', `--chaos: ${(err as Error).message}`);
  }
  const problem = checkChaosWorkers(faults, workers);
  if (problem !== null) throw dptError('DPT_ERR_USAGE', `--chaos: ${problem}`);
  return faults;
}

/** Key under which worker threads cache the model: what they compute depends on nothing else. */
export function sessionKey(config: TrainConfig): string {
  return hashConfig({ model: config.model, loss: config.loss, seed: config.seed });
}

export function chooseEngine(config: TrainConfig, workers: number, log: (line: string) => void): EngineChoice {
  const chaos = chaosOf(config, workers);
  if (workers === 0) {
    return {
      workers, sharedWeights: false,
      prepare: (data) => data,
      async create(model, data, maxBatch) {
        return createLocalEngine(model, getLoss(config.loss), data.train, config.seed, maxBatch);
      },
    };
  }
  return {
    workers, sharedWeights: true,
    prepare: (data) => ({ ...data, train: wholeShared(data.train) }),
    async create(model, data, maxBatch) {
      return createThreadEngine({
        model, loss: config.loss, seed: config.seed, session: sessionKey(config),
        train: data.train, maxBatch, workers, stepTimeoutMs: config.stepTimeoutMs, chaos, log,
      });
    },
  };
}
