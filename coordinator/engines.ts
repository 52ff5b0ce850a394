// Which gradient engine a run uses: `--workers 0` computes in the
// coordinator's thread (engine.ts), `--workers N` on N worker threads
// (transports/threads.ts) through the dispatcher. Wiring only.
import { availableParallelism } from 'node:os';
import { getLoss } from '../src/losses/index.js';
import type { Model } from '../src/model/model.js';
import { dptError } from '../src/errors.js';
import { checkChaosWorkers, parseChaos, type Fault } from './dispatch/chaos.js';
import { hashConfig } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { createDispatchEngine, createLocalEngine, type GradientEngine } from './engine.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { sharedParams, startThreadTransport, wholeShared } from './transports/threads.js';
import { gradLength } from '../src/train/step.js';
import type { TrainData } from './trainer.js';

/** Worker threads when neither --workers nor the config says: one per core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

export interface EngineChoice {
  workers: number;
  /** A zeroed buffer of n floats for the master weights, where this engine's workers read them best. */
  allocParams(n: number): Float32Array;
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

/** A corrupt fault must name an element of the gradient vector. */
function checkChaosIndex(faults: readonly Fault[], gradLen: number): void {
  const bad = faults.find((f) => f.kind === 'corrupt' && (f.index ?? 0) >= gradLen);
  if (bad !== undefined) throw dptError('DPT_ERR_USAGE', `--chaos: corrupt index=${bad.index} is past the gradient vector (${gradLen} floats)`);
}

/** Key under which worker threads cache the model: what they compute depends on nothing else. */
export function sessionKey(config: TrainConfig): string {
  return hashConfig({ model: config.model, loss: config.loss, seed: config.seed });
}

export function chooseEngine(config: TrainConfig, workers: number, log: (line: string) => void): EngineChoice {
  const chaos = chaosOf(config, workers);
  if (workers === 0) {
    return {
      workers, allocParams: (n) => new Float32Array(n),
      prepare: (data) => data,
      async create(model, data, maxBatch) {
        return createLocalEngine(model, getLoss(config.loss), data.train, config.seed, maxBatch);
      },
    };
  }
  return {
    // Threads read the master weights in place: publishing a step's weights is then one Atomics.store.
    workers, allocParams: sharedParams,
    prepare: (data) => ({ ...data, train: wholeShared(data.train) }),
    async create(model, data, maxBatch) {
      checkChaosIndex(chaos, gradLength(model));
      const dispatcher = new Dispatcher({ gradLen: gradLength(model), stepTimeoutMs: config.stepTimeoutMs, chaos, log });
      const board = { version: 0, params: model.params };
      const threads = await startThreadTransport({
        threads: workers, dispatcher, board, model: config.model, loss: config.loss, seed: config.seed,
        session: sessionKey(config), train: data.train, maxBatch, log,
      });
      return createDispatchEngine(dispatcher, board, () => threads.close());
    },
  };
}
