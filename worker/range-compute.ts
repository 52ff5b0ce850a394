// How a network worker computes its ranges: on its main thread (one
// thread: no hand-off, the weights copied once from the received frame into
// the kernels' memory), or across N worker threads of its own with a local
// dispatcher (the coordinator's own code), whose partial sums it combines
// into the range's aligned blocks in the fixed tree order before answering
// (hierarchical reduction). Either way the bits are those of
// src/train/range.ts.
//
// Computing on the main thread blocks its event loop for one range (a few
// ms to a few hundred); pings are answered and heartbeats sent in between,
// far inside the coordinator's --peer-timeout-ms.
import type { Dataset } from '../src/data/dataset.js';
import { getLoss } from '../src/losses/index.js';
import { buildModel } from '../src/model/model.js';
import type { Session } from '../src/protocol/messages.js';
import { createRangeWorker, type RangeRequest } from '../src/train/range.js';
import { nodeRounding } from '../src/reduce/bf16.js';
import { gradLength } from '../src/train/step.js';
import { Dispatcher } from '../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../src/dispatch/weights-board.js';
import { sharedParams, startThreadTransport } from '../node/threads/transport.js';

export interface RangeCompute {
  /** Floats in the flat parameter buffer and in one gradient vector. */
  readonly size: number;
  readonly gradLen: number;
  /** The weights version held (-1: none). */
  readonly version: number;
  /** Takes weights version `version` (copied: `params` may be a view into a received frame). */
  setWeights(version: number, params: Float32Array): void;
  /** Writes the aligned-block sums of the request's range into `sums` (blocks × gradLen floats), nodes rounded as the session's gradWire says. */
  compute(request: RangeRequest & { version: number }, sums: Float32Array): Promise<void>;
  close(): Promise<void>;
}

/** The session's model on this (main) thread. */
export function inlineCompute(session: Session, train: Dataset): RangeCompute {
  const model = buildModel(session.model);
  const xSize = train.x.length / train.n;
  const ySize = train.y.length / train.n;
  const worker = createRangeWorker(model, getLoss(session.loss), session.seed, { x: train.x, y: train.y, n: train.n, xSize, ySize }, session.maxBatch);
  // The coordinator's version numbers start again when it restarts: count our own, so new weights are never mistaken for held ones.
  let held = -1;
  let local = 0;
  const round = nodeRounding(session.gradWire ?? 'f32', model.numTrainable);
  return {
    size: model.size,
    gradLen: worker.gradLen,
    get version() { return held; },
    setWeights(version, params) {
      worker.setWeights(++local, params);
      held = version;
    },
    async compute(request, sums) {
      const problem = worker.check(request);
      if (problem !== null) throw new Error(problem);
      const g = worker.gradLen;
      worker.compute(request, (b, _node, sum) => sums.set(sum, b * g), round);
    },
    async close() {},
  };
}

/** The session's model on `threads` worker threads, one range cut across them. */
export async function threadedCompute(
  session: Session, sessionKey: string, train: Dataset, threads: number, log: (line: string) => void,
): Promise<RangeCompute> {
  const model = buildModel(session.model); // for its layout only: the threads build their own
  const size = model.size;
  const gradLen = gradLength(model);
  // The threads round the nodes they form, the local combine those it forms (--grad-wire bf16).
  const round = nodeRounding(session.gradWire ?? 'f32', model.numTrainable);
  const dispatcher = new Dispatcher({ gradLen, stepTimeoutMs: 0, log: (line) => log(`threads: ${line}`), ...(round === undefined ? {} : { round }) });
  const board: WeightsBoard = { version: 0, params: sharedParams(size) };
  const transport = await startThreadTransport({
    threads, dispatcher, board, model: session.model, loss: session.loss, seed: session.seed,
    session: sessionKey, train, maxBatch: session.maxBatch, log, ...(session.gradWire === undefined ? {} : { gradWire: session.gradWire }),
  });
  // Local versions count up on every new set of weights (the threads copy on a version change);
  // `held` is the coordinator's number for them.
  let held = -1;
  return {
    size,
    gradLen,
    get version() { return held; },
    setWeights(version, params) {
      if (params.length !== size) throw new RangeError(`weights of ${params.length} floats, the model has ${size}`);
      board.params.set(params);
      board.version++;
      held = version;
    },
    async compute(request, sums) {
      await dispatcher.computeRange(
        { ...request, version: board.version, indices: Uint32Array.from(request.indices) },
        (b) => sums.subarray(b * gradLen, (b + 1) * gradLen),
      );
    },
    async close() {
      dispatcher.close();
      await transport.close();
    },
  };
}
