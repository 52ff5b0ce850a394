// The thread transport: N Piscina worker threads of this process, each one
// WorkerLink of the dispatcher (`t0`, `t1`, ...), and the step loop's lanes.
// Wiring only: the threads' pool (pool.ts), their lanes and orders
// (lanes.ts), result regions (regions.ts), what they read in place
// (shared-data.ts), the mailbox (mailbox.ts) and the messages (protocol.ts).
//
// Memory (docs/design.md principle 2 and "Never detach an ArrayBuffer"):
//   - the training set is copied ONCE onto SharedArrayBuffers (wholeShared)
//     and every thread reads it in place (or copies it into its own memory
//     once, when all copies fit OWN_COPY_BYTES);
//   - the weights: threads read a SharedArrayBuffer. When the weights board
//     already lives on one, publishing a version is one Atomics.store;
//     otherwise (the coordinator's weights in its WebAssembly memory, where
//     its SGD step runs in place; a network worker's weights arriving in
//     frames) the board is copied in first;
//   - each order's partial sums go into a result region, a SharedArrayBuffer
//     lent to that one order until it settles (RegionPool), so a late or
//     failed order can never scribble over an accepted answer.
// Nothing is transferred, so no isolate ever detaches a buffer.
//
// Per step, nothing is posted (docs/design.md measured ~70 us per Piscina task,
// and 0.2-0.4 ms here until a sleeping thread runs): every thread runs one
// long serve task (thread-entry.ts) that takes its orders from a
// mailbox in shared memory (mailbox.ts). Sending an order is
// a few stores and an Atomics.notify; the thread spins on the mailbox for
// a while after each answer (so the next order finds it awake) before it
// sleeps in Atomics.wait; its answer is a store the coordinator awaits with
// Atomics.waitAsync, off its event loop's critical path.
//
// Piscina keeps what is not the hot loop: starting the threads (a warm-up
// task each, held at a barrier), and replacing a thread that dies. A link
// is a lane of the pool, not a particular thread: when a thread exits, its
// serve task fails, the lane's open order is reported failed, and a new
// serve task (new mailbox, new port) runs on Piscina's replacement thread.
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import type { Dataset } from '../../src/data/dataset.js';
import { createStepBoard, exitSteps } from '../../src/steploop/board.js';
import { activeKernelKind } from '../../src/tensor/setup.js';
import { kernelsModule } from '../kernels/setup.js';
import { W } from './mailbox.js';
import { startPool } from './pool.js';
import { CONTROL_LENGTH, CONTROL_VERSION, THREAD_PROTOCOL_VERSION, type ThreadSetup } from './protocol.js';
import { RegionPool } from './regions.js';
import { ThreadLanes, type HandoffStats, type StepLanes } from './lanes.js';
import { fillsShared, OWN_COPY_BYTES, sharedParams, wholeShared } from './shared-data.js';

export type { HandoffStats, LoopExit, StepLanes } from './lanes.js';
export type { StepRegion } from './regions.js';
export { OWN_COPY_BYTES, sharedParams, wholeShared } from './shared-data.js';

export interface ThreadTransportOptions {
  threads: number;
  dispatcher: Dispatcher;
  /** The weights to publish: the version and the flat buffer the dispatcher's steps compute with. */
  board: WeightsBoard;
  /** The model spec, loss and seed the threads build (validated again there). */
  model: unknown;
  loss: string;
  seed: number;
  /** Key of (model, loss, seed): threads cache their model by it. */
  session: string;
  train: Dataset;
  /** Largest global batch, in rows. */
  maxBatch: number;
  /** --grad-wire (default f32). */
  gradWire?: 'f32' | 'bf16';
  /** Link ids are `${idPrefix}${i}`. Default 't'. */
  idPrefix?: string;
  /** How long a thread spins on its mailbox after an answer before it sleeps (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** The threads copy the training set into their own memory when all copies take at most this (default OWN_COPY_BYTES). */
  ownCopyBytes?: number;
  log?: (line: string) => void;
}

export interface ThreadTransport {
  readonly threads: number;
  /** The step loop's lanes, when the weights board lives on shared memory (null: ranges only). */
  readonly steps: StepLanes | null;
  /** Ends thread i as a crash would (tests: a thread that dies at a moment of their choosing); false if it is not serving. */
  terminateThread(i: number): Promise<boolean>;
  handoff(): HandoffStats;
  close(): Promise<void>;
}

/**
 * A thread's spin on its mailbox after an answer, before it sleeps: longer
 * than the coordinator's turn between two steps (reduction, SGD step,
 * sampling, dispatch), short enough that idle threads soon stop using a core.
 */
export const DEFAULT_SPIN_US = 2000;

/**
 * Starts the threads (warmed up, see pool.ts), then joins one link per
 * thread to the dispatcher.
 */
export async function startThreadTransport(opts: ThreadTransportOptions): Promise<ThreadTransport> {
  const { threads, dispatcher, board } = opts;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`the thread transport needs threads >= 1, got ${threads}`);
  const log = opts.log ?? (() => {});
  const size = board.params.length;
  // The board itself when it already fills a SharedArrayBuffer (no copy per step), else a shared copy.
  const direct = fillsShared(board.params);
  const shared = direct ? board.params : sharedParams(size);
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_LENGTH * 4));
  Atomics.store(control, CONTROL_VERSION, -1);
  const train = wholeShared(opts.train);
  const setup: ThreadSetup = {
    protocol: THREAD_PROTOCOL_VERSION, session: opts.session, model: opts.model, loss: opts.loss as ThreadSetup['loss'],
    seed: opts.seed, maxBatch: opts.maxBatch, ...(opts.gradWire === undefined ? {} : { gradWire: opts.gradWire }),
    train: {
      x: train.x.buffer as SharedArrayBuffer, y: train.y.buffer as SharedArrayBuffer, n: train.n,
      xSize: train.x.length / train.n, ySize: train.y.length / train.n,
      ownCopy: threads * (train.x.byteLength + train.y.byteLength) <= (opts.ownCopyBytes ?? OWN_COPY_BYTES),
    },
    params: shared.buffer as SharedArrayBuffer, control: control.buffer,
    kernels: activeKernelKind() === 'wasm' ? { kind: 'wasm', module: kernelsModule() } : { kind: 'ts' },
  };
  let lanes: ThreadLanes | null = null;
  const pool = await startPool(setup, threads, log, () => lanes?.isClosed() ?? false);
  const stepBoard = createStepBoard(opts.maxBatch);
  const l = new ThreadLanes({
    pool, dispatcher, board, shared, direct, control, regions: new RegionPool(size + 2), stepBoard,
    session: opts.session, maxBatch: opts.maxBatch, spinUs: opts.spinUs ?? DEFAULT_SPIN_US, gradLen: size + 2,
  });
  lanes = l;
  const prefix = opts.idPrefix ?? 't';
  for (let i = 0; i < threads; i++) l.add(`${prefix}${i}`, i);
  for (const lane of l.lanes) dispatcher.join(l.link(lane));
  const stepLanes = l.stepLanes();
  let closed = false;
  return {
    threads,
    // The step loop writes the weights: only when they are the shared buffer the threads read.
    steps: direct ? stepLanes : null,
    handoff: () => ({ ...l.handoffStats }),
    async terminateThread(i) {
      const id = Atomics.load(l.lanes[i].serving.mailbox.words, W.THREAD_ID);
      const thread = pool.threads.find((t) => t.threadId === id);
      if (id <= 0 || thread === undefined) return false;
      await thread.terminate();
      return true;
    },
    async close() {
      if (closed) return;
      closed = true;
      exitSteps(stepBoard);
      l.close();
      for (const lane of l.lanes) if (!lane.gone) dispatcher.leave(lane.id, 'closed');
      await pool.destroy();
    },
  };
}
