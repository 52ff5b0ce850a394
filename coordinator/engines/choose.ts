// Which gradient engine a run uses: `--workers 0` computes in the
// coordinator's thread (engine.ts); `--workers N` on N worker threads
// (transports/threads.ts) and `--listen` with worker processes and tabs
// (cluster.ts, transports/ws.ts), both through one dispatcher; without a
// worker count, whichever of one thread per core and the coordinator's
// thread is faster for the run (auto-engine.ts). Wiring only.
import { randomInt } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { getLoss } from '../../src/losses/index.js';
import type { Model } from '../../src/model/model.js';
import { dptError } from '../../src/errors.js';
import { checkChaosWorkers, parseChaos, type Fault } from '../../src/dispatch/chaos.js';
import { hashConfig } from '../run/checkpoint.js';
import type { TrainConfig } from '../run/config.js';
import type { EngineOutcome, GradientEngine, WorkersChoice } from './engine.js';
import { createDispatchEngine } from './dispatch-engine.js';
import { createCollectiveEngine } from './collective.js';
import { nodeRounding } from '../../src/reduce/bf16.js';
import { createLocalEngine } from './local.js';
import { createAutoEngine } from './auto.js';
import { buildModel } from '../../src/model/model.js';
import { createStepLoopEngine } from './step-loop.js';
import { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { sharedParams, startThreadTransport, wholeShared, type ThreadTransport } from '../../node/threads/transport.js';
import { gradLength } from '../../src/train/step.js';
import { activeKernelKind } from '../../src/tensor/setup.js';
import { unlessAborted } from '../run/interrupt.js';
import type { TrainData } from '../run/trainer.js';
import { startCoordinatorNode, type ClusterOptions, type CoordinatorNode } from '../serve/cluster.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { microShardsOf } from '../run/config.js';
import { createReferee } from '../../src/dispatch/referee.js';
import { undetectedProbability } from '../../src/dispatch/verification.js';

/** Parameters times batch rows below which the default engine does not consider threads (a step of a few microseconds). */
const TINY_STEP = 200_000;

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
  /** The engine; a stop request ends a wait for network workers (the run then stops before its first step). */
  create(model: Model, data: TrainData, maxBatch: number, stopSignal?: AbortSignal): Promise<GradientEngine>;
}

/**
 * The coordinator's own thread for the default engine, whose weights live on
 * shared memory (which the kernels would copy in at every matrix product):
 * it computes on a copy of the model in the kernels' memory, the weights
 * copied in once per step.
 */
export function localOnCopy(model: Model, config: TrainConfig, data: TrainData, maxBatch: number): GradientEngine {
  const copy = buildModel(model.spec);
  const engine = createLocalEngine(copy, getLoss(config.loss), data.train, config.seed, maxBatch, config.gradWire);
  return {
    ...engine,
    async batchGradient(job, out) {
      copy.params.set(model.params);
      await engine.batchGradient(job, out);
    },
  };
}

/**
 * The faults of the config's chaos SPEC, checked against the thread count
 * (DPT_ERR_USAGE); with network workers the slots are whoever is connected.
 */
export function chaosOf(config: TrainConfig, workers: number, networked = false, option = '--chaos'): Fault[] {
  let faults: Fault[];
  try {
    faults = config.chaos === undefined ? [] : parseChaos(config.chaos);
  } catch (err) {
    throw dptError('DPT_ERR_USAGE', `${option}: ${(err as Error).message}`);
  }
  const problem = networked ? null : checkChaosWorkers(faults, workers);
  if (problem !== null) throw dptError('DPT_ERR_USAGE', `${option}: ${problem}`);
  return faults;
}

/** A corrupt fault must name an element of the gradient vector. */
function checkChaosIndex(faults: readonly Fault[], gradLen: number): void {
  const bad = faults.find((f) => f.kind === 'corrupt' && (f.index ?? 0) >= gradLen);
  if (bad !== undefined) throw dptError('DPT_ERR_USAGE', `--chaos: corrupt index=${bad.index} is past the gradient vector (${gradLen} floats)`);
}

/** Key under which worker threads cache the model: what they compute depends on nothing else. */
export function sessionKey(config: TrainConfig): string {
  return hashConfig({ model: config.model, loss: config.loss, seed: config.seed, ...(config.gradWire === 'f32' ? {} : { gradWire: config.gradWire }) });
}

/**
 * The engine for `workers` threads, or for 'auto' (no worker count given):
 * one thread per core or the coordinator's thread, measured (a run with
 * --chaos keeps the threads: the faults are theirs to carry out).
 */
export function chooseEngine(config: TrainConfig, count: number | 'auto', log: (line: string) => void, cluster?: ClusterOptions): EngineChoice {
  const workers = count === 'auto' ? defaultWorkers() : count;
  const auto = count === 'auto' && cluster === undefined && config.chaos === undefined;
  const chaos = chaosOf(config, workers, cluster !== undefined);
  // A model this small is not worth measuring: threads could not gain their cost back, and getting
  // ready for them (the weights on shared memory) would slow its tiny steps.
  const size = auto ? buildModel(config.model).size : 0;
  const tiny = auto && size * config.batchSize < TINY_STEP;
  if ((workers === 0 || tiny) && cluster === undefined) {
    const choice: WorkersChoice | undefined = tiny
      ? { workers: 0, reason: `the model has ${size} parameters and batches of ${config.batchSize} rows, steps too small for worker threads to gain: training in the coordinator's thread (as --workers 0)` }
      : undefined;
    if (choice !== undefined) log(`workers: ${choice.reason}`);
    return {
      workers: 0, allocParams: (n) => new Float32Array(n),
      prepare: (data) => data,
      async create(model, data, maxBatch) {
        const engine = createLocalEngine(model, getLoss(config.loss), data.train, config.seed, maxBatch, config.gradWire);
        return choice === undefined ? engine : { ...engine, choice: () => choice };
      },
    };
  }
  /** The threads (and network workers) under one dispatcher; thread-only runs without faults in the step loop. */
  const startWorkers = async (model: Model, data: TrainData, maxBatch: number, stopSignal?: AbortSignal): Promise<GradientEngine> => {
    const gradLen = gradLength(model);
    checkChaosIndex(chaos, gradLen);
    let node: CoordinatorNode | null = null;
    const board: WeightsBoard = { version: 0, params: model.params };
    const verifyFraction = cluster?.verifyFraction ?? 0;
    const dispatcher = new Dispatcher({
      gradLen, stepTimeoutMs: config.stepTimeoutMs, chaos, log,
      ...(config.gradWire === 'f32' ? {} : { round: nodeRounding(config.gradWire, model.numTrainable) }),
      onMembership: () => node?.metrics.setWorkers(dispatcher.liveCount()),
      ...(verifyFraction > 0 ? {
        verifyFraction, verifyKey: randomInt(0, 2 ** 32),
        referee: createReferee({ model: config.model, loss: config.loss, seed: config.seed, train: data.train, maxBatch, board }),
      } : {}),
    });
    if (cluster?.status !== undefined) {
      cluster.status.setWorkerSource(dispatcher);
      cluster.status.setParams(model.size);
    }
    if (verifyFraction > 0 && verifyFraction < 1) {
      log(`--verify-fraction ${verifyFraction}: a worker that tampers with 10 ranges goes unnoticed with probability ` +
        `${(100 * undetectedProbability(verifyFraction, 10)).toPrecision(2)}%, with 50: ${(100 * undetectedProbability(verifyFraction, 50)).toPrecision(2)}%`);
    }
    const closers: ((outcome: EngineOutcome) => Promise<void>)[] = [];
    const closeAll = async (outcome: EngineOutcome) => { for (const c of closers.reverse()) await c(outcome); };
    let threads: ThreadTransport | null = null;
    // The collective (issue 21): with network workers, unless the topology is star or ranges are cross-checked
    // (--verify-fraction: the coordinator must see every range's sums).
    let dispatching: GradientEngine | null = null;
    const topology = config.topology;
    if (topology === 'collective' && verifyFraction > 0) throw dptError('DPT_ERR_USAGE', '--topology collective: the coordinator cannot recompute ranges it never sees; use --verify-fraction 0 or --topology star');
    const collective = cluster !== undefined
      ? createCollectiveEngine({
        star: () => dispatching!, dispatcher, board, model, wire: config.gradWire, stepTimeoutMs: config.stepTimeoutMs,
        topology: verifyFraction > 0 ? 'star' : topology,
        starReason: verifyFraction > 0 ? 'ranges are cross-checked (--verify-fraction): the coordinator must see every range' : 'topology star (--topology)',
        checkEvery: config.replicaCheckEvery, chaos, log,
      })
      : null;
    try {
      if (workers > 0) {
        const t = await startThreadTransport({
          threads: workers, dispatcher, board, model: config.model, loss: config.loss, seed: config.seed,
          session: sessionKey(config), train: data.train, maxBatch, log, gradWire: config.gradWire,
        });
        threads = t;
        closers.push(() => t.close());
      }
      if (cluster !== undefined) {
        node = await startCoordinatorNode({
          cluster, dispatcher, board, train: data.train, log, gradLen, maxMicroShards: microShardsOf(config),
          session: { model: config.model, loss: config.loss, seed: config.seed, maxBatch, ...(config.gradWire === 'f32' ? {} : { gradWire: config.gradWire }) },
          kernels: activeKernelKind(),
          ...(collective === null ? {} : { collective: collective.port }),
        });
        const n = node;
        closers.push((outcome) => n.close(outcome.kind, outcome.reason));
        if (dispatcher.liveCount() < cluster.minWorkers) {
          log(`waiting for ${cluster.minWorkers} worker${cluster.minWorkers === 1 ? '' : 's'} (${dispatcher.liveCount()} connected)`);
          // A stop request ends the wait: the trainer sees it before the first step and stops there.
          await unlessAborted(dispatcher.whenWorkers(cluster.minWorkers), stopSignal);
        }
        n.setPhase('training');
      }
    } catch (err) {
      await closeAll({ kind: 'failed', reason: (err as Error).message });
      throw err;
    }
    let reassigned = 0;
    dispatching = createDispatchEngine(dispatcher, board, closeAll, {
      ...(node === null ? {} : { wireBytes: () => node.transport.wireBytes() }),
      ...(threads === null ? {} : { handoff: () => threads.handoff() }),
      stepDone(report) {
        if (node === null) return;
        node.metrics.stepDone(report);
        const now = dispatcher.stats().reassigned;
        if (now > reassigned) node.metrics.rangeReassigned(now - reassigned);
        reassigned = now;
      },
    });
    // Thread-only runs without injected faults: the threads run whole steps (reduction and update included).
    const steps = threads?.steps ?? null;
    if (collective !== null) return collective;
    return steps !== null && node === null && chaos.length === 0
      ? createStepLoopEngine({ lanes: steps, general: dispatching, weights: board, model, stepTimeoutMs: config.stepTimeoutMs, log })
      : dispatching;
  };

  return {
    // Threads read the master weights (and the optimizer state) in place, and in the step loop write them.
    workers, allocParams: workers > 0 ? sharedParams : (n) => new Float32Array(n),
    prepare: (data) => (workers > 0 ? { ...data, train: wholeShared(data.train) } : data),
    async create(model, data, maxBatch, stopSignal) {
      // The default engine starts the threads only if its own steps are long enough to gain from them.
      if (auto) {
        // The threads start before the first step, as with --workers N: starting them (spawning, each
        // building its session) would otherwise run beside the first steps and slow them several times.
        const started = startWorkers(model, data, maxBatch);
        await started.catch(() => {}); // a failure is the auto engine's to report (it keeps its own thread)
        return createAutoEngine(localOnCopy(model, config, data, maxBatch), workers, () => started, gradLength(model), log);
      }
      return startWorkers(model, data, maxBatch, stopSignal);
    },
  };
}
