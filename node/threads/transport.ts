// The thread transport: N Piscina worker threads of this process, each one
// WorkerLink of the dispatcher (`t0`, `t1`, ...).
//
// Memory (DESIGN.md principle 2 and "Never detach an ArrayBuffer"):
//   - the training set is copied ONCE onto SharedArrayBuffers (wholeShared)
//     and every thread reads it in place;
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
// Per step, nothing is posted (DESIGN.md measured ~70 us per Piscina task,
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
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { isShared, toShared, type Dataset } from '../../src/data/dataset.js';
import { dptError } from '../../src/errors.js';
import { formatZodError } from '../../src/check/zod-format.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { activeKernelKind } from '../../src/tensor/setup.js';
import { kernelsModule } from '../kernels/setup.js';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import {
  CONTROL_BUSY, CONTROL_LENGTH, CONTROL_VERSION, ReadyReply, TaskReply, THREAD_PROTOCOL_VERSION,
  type ServeTask, type ThreadSetup, type WarmupTask,
} from './protocol.js';
import { clock, createMailbox, handoff, postOrder, postStepsOrder, readReply, W, type Mailbox } from './mailbox.js';
import { createStepBoard, exitSteps, type StepBoard } from '../../src/steploop/board.js';
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import type { RangeOrder, WorkerLink } from '../../src/dispatch/contract.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';

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
  /** Link ids are `${idPrefix}${i}`. Default 't'. */
  idPrefix?: string;
  /** How long a thread spins on its mailbox after an answer before it sleeps (default DEFAULT_SPIN_US). */
  spinUs?: number;
  /** The threads copy the training set into their own memory when all copies take at most this (default OWN_COPY_BYTES). */
  ownCopyBytes?: number;
  log?: (line: string) => void;
}

/** Where the orders' time went (cumulative ms over answered orders): see ThreadTransport.handoff. */
export interface HandoffStats {
  orders: number;
  /** From posting an order until its thread noticed it (a spinning thread at once, a sleeping one once woken). */
  wakeMs: number;
  /** From noticing it until the answer was posted (the thread's work). */
  workMs: number;
  /** From the answer until the coordinator's event loop took it. */
  replyMs: number;
}

/** How a thread left the step loop. */
export type LoopExit =
  | { kind: 'left'; steps: number }
  | { kind: 'error'; message: string }
  | { kind: 'died'; message: string };

/** A result region as the step loop names it. */
export interface StepRegion {
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  readonly floats: Float32Array;
}

/** What the step loop (thread-steps.ts) drives: the board, and the threads as lanes of it. */
export interface StepLanes {
  readonly board: StepBoard;
  readonly count: number;
  /** The threads' worker ids, by index. */
  readonly ids: readonly string[];
  /** Every thread alive, computing nothing, nothing waiting for it, not in the loop. */
  idle(): boolean;
  /** Some thread is still in the loop. */
  inLoop(): boolean;
  /** The region (id) under which threads know a shared buffer of the caller's. */
  region(buffer: SharedArrayBuffer): StepRegion;
  /** Orders every thread into the loop from step sequence number firstSeq, after sending it these regions; onLeave(i, how) when thread i leaves. */
  enter(firstSeq: number, regions: readonly StepRegion[], onLeave: (lane: number, why: LoopExit) => void): void;
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

/** A zeroed float32 buffer of n floats filling a SharedArrayBuffer: what a model is built over for threads to read. */
export function sharedParams(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

/** The dataset with x and y each filling a whole SharedArrayBuffer: as is if it already does, else copied once. */
export function wholeShared(ds: Dataset): Dataset {
  return fillsShared(ds.x) && fillsShared(ds.y) ? ds : toShared(ds);
}

function fillsShared(a: Float32Array): boolean {
  return isShared(a) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/** dist/node/threads/thread-entry.js, beside this file in dist/ (the CLI), or from node/threads (tests run the TS sources). */
export function threadWorkerFile(): string {
  const candidates = [
    new URL('./thread-entry.js', import.meta.url),
    new URL('../../dist/node/threads/thread-entry.js', import.meta.url),
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error('dist/node/threads/thread-entry.js not found: run `npm run build`');
}

/**
 * A thread's spin on its mailbox after an answer, before it sleeps: longer
 * than the coordinator's turn between two steps (reduction, SGD step,
 * sampling, dispatch), short enough that idle threads soon stop using a core.
 */
export const DEFAULT_SPIN_US = 2000;

/**
 * The threads each copy the training set into their own memory when all
 * the copies together take at most this much: rows gathered out of a
 * SharedArrayBuffer go through V8's relaxed-atomic copy, word by word,
 * which cost 3% of a thread's compute on the MNIST MLP (two threads, 128
 * rows each: 1.41 against 1.37 ms). Larger sets stay shared: memory first.
 */
export const OWN_COPY_BYTES = 512 * 1024 * 1024;

// NOTE: Node 20 (V8 11.3) has Atomics.waitAsync; tsconfig's lib ES2022 does not declare it.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

/** A thread whose serve task fails this often in a row without answering an order leaves the run. */
const MAX_SERVE_FAILURES = 8;

interface Region {
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  readonly floats: Float32Array;
  readonly blocks: number;
}

/** Result regions lent to one order at a time, sized in blocks of one gradient vector each. */
class RegionPool {
  private readonly free: Region[] = [];
  private count = 0;
  constructor(private readonly blockFloats: number) {}
  acquire(blocks: number): Region {
    const i = this.free.findIndex((r) => r.blocks >= blocks);
    if (i >= 0) return this.free.splice(i, 1)[0];
    const buffer = new SharedArrayBuffer(blocks * this.blockFloats * 4);
    return { id: this.count++, buffer, floats: new Float32Array(buffer), blocks };
  }
  /** A region over a buffer of the caller's (e.g. the optimizer state), never lent out. */
  adopt(buffer: SharedArrayBuffer): Region {
    return { id: this.count++, buffer, floats: new Float32Array(buffer), blocks: 0 };
  }
  release(region: Region): void {
    this.free.push(region);
  }
}

/**
 * Starts the threads, builds the model in each before the first step (one
 * warm-up task per thread, held at a barrier until all have arrived, so
 * thread start-up never counts against the step timeout), then joins one
 * link per thread to the dispatcher.
 */
export async function startThreadTransport(opts: ThreadTransportOptions): Promise<ThreadTransport> {
  const { threads, dispatcher, board } = opts;
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`the thread transport needs threads >= 1, got ${threads}`);
  const log = opts.log ?? (() => {});
  const size = board.params.length;
  const gradLen = size + 2;
  // The board itself when it already fills a SharedArrayBuffer (no copy per step), else a shared copy.
  const direct = fillsShared(board.params);
  const shared = direct ? board.params : sharedParams(size);
  const control = new Int32Array(new SharedArrayBuffer(CONTROL_LENGTH * 4));
  Atomics.store(control, CONTROL_VERSION, -1);
  const train = wholeShared(opts.train);
  const xSize = train.x.length / train.n;
  const ySize = train.y.length / train.n;
  const setup: ThreadSetup = {
    protocol: THREAD_PROTOCOL_VERSION, session: opts.session, model: opts.model, loss: opts.loss as ThreadSetup['loss'],
    seed: opts.seed, maxBatch: opts.maxBatch,
    train: {
      x: train.x.buffer as SharedArrayBuffer, y: train.y.buffer as SharedArrayBuffer, n: train.n, xSize, ySize,
      ownCopy: threads * (train.x.byteLength + train.y.byteLength) <= (opts.ownCopyBytes ?? OWN_COPY_BYTES),
    },
    params: shared.buffer as SharedArrayBuffer, control: control.buffer as SharedArrayBuffer,
    kernels: activeKernelKind() === 'wasm' ? { kind: 'wasm', module: kernelsModule() } : { kind: 'ts' },
  };
  const pool = new Piscina({
    filename: threadWorkerFile(),
    minThreads: threads, maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    workerData: setup,
    recordTiming: false,
  });
  // A thread dying outside a task must not take the coordinator down: Piscina replaces it.
  pool.on('error', (err: Error) => { if (!closed) log(`worker thread error: ${err.message}; the pool replaces the thread`); });

  const regions = new RegionPool(gradLen);
  const lanes: Lane[] = [];
  let closed = false;

  /** Makes the board's weights version the one threads see (copying the weights in if they live elsewhere). */
  function publish(version: number): void {
    if (Atomics.load(control, CONTROL_VERSION) === version) return;
    if (!direct) shared.set(board.params);
    Atomics.store(control, CONTROL_VERSION, version);
  }

  const spinUs = opts.spinUs ?? DEFAULT_SPIN_US;
  const stepBoard = createStepBoard(opts.maxBatch);

  /** One serve loop of a lane: its mailbox, the coordinator's end of its port, the regions it was sent. */
  interface Serving {
    readonly mailbox: Mailbox;
    readonly port: MessagePort;
    readonly known: Set<number>;
  }
  /** The order a lane is computing. */
  interface Open {
    readonly order: RangeOrder;
    readonly region: Region;
    readonly serving: Serving;
    readonly seq: number;
  }
  /** A lane in the step loop: its order's sequence number, and whom to tell when it leaves. */
  interface InLoop {
    readonly serving: Serving;
    readonly seq: number;
    readonly onLeave: (why: LoopExit) => void;
  }
  interface Lane {
    readonly id: string;
    readonly index: number;
    serving: Serving;
    open: Open | null;
    loop: InLoop | null;
    /** A range the dispatcher sent while the lane was in the step loop: posted when it leaves. */
    queued: RangeOrder | null;
    /** Serve tasks that failed in a row without answering an order. */
    failures: number;
    gone: boolean;
  }

  /** Starts a serve task on the pool for the lane (a fresh mailbox and port). */
  function serve(lane: Lane): Serving {
    const { port1, port2 } = new MessageChannel();
    const serving: Serving = { mailbox: createMailbox(opts.maxBatch), port: port1, known: new Set() };
    const task: ServeTask = {
      type: 'serve', protocol: THREAD_PROTOCOL_VERSION, session: opts.session, mailbox: serving.mailbox.buffer,
      board: stepBoard.buffer, port: port2, spinUs,
    };
    // The task holds a thread for good: it ends when the thread dies or close() stops it.
    pool.run(task, { transferList: [port2] }).then(
      () => {},
      (err: unknown) => serveEnded(lane, serving, err instanceof Error ? err.message : String(err)),
    );
    return serving;
  }

  /** The lane's thread died (or its serve loop threw): fail its open order, and serve again on the replacement. */
  function serveEnded(lane: Lane, serving: Serving, reason: string): void {
    serving.port.close();
    if (closed || lane.gone || lane.serving !== serving) return;
    const open = lane.open;
    lane.open = null;
    const loop = lane.loop;
    lane.loop = null;
    // Unless the thread took its order off the busy count before it died (it answered), take it off for it.
    if (open !== null && Atomics.load(serving.mailbox.words, W.DONE_SEQ) !== open.seq) Atomics.sub(control, CONTROL_BUSY, 1);
    if (++lane.failures > MAX_SERVE_FAILURES) {
      lane.gone = true;
      if (open !== null) regions.release(open.region);
      loop?.onLeave({ kind: 'died', message: reason });
      dispatcher.leave(lane.id, `its thread failed ${lane.failures} times in a row (${reason})`);
      return;
    }
    // First the new serve loop, so that the range can go straight back to this lane.
    lane.serving = serve(lane);
    loop?.onLeave({ kind: 'died', message: reason });
    if (open !== null) {
      regions.release(open.region);
      dispatcher.failure(lane.id, open.order.taskId, reason);
    }
    postQueued(lane);
  }

  /** Resolves when the serve loop has answered order `seq` (never, if its thread dies first). */
  async function answered(mailbox: Mailbox, seq: number): Promise<void> {
    for (;;) {
      const done = Atomics.load(mailbox.words, W.DONE_SEQ);
      if (done === seq) return;
      const wait = waitAsync(mailbox.words, W.DONE_SEQ, done);
      if (wait.async) await wait.value;
    }
  }

  const handoffStats: HandoffStats = { orders: 0, wakeMs: 0, workMs: 0, replyMs: 0 };

  function settle(lane: Lane, open: Open): void {
    if (closed || lane.open !== open) return; // the thread died meanwhile: already failed
    lane.open = null;
    lane.failures = 0;
    const t = handoff(open.serving.mailbox);
    handoffStats.orders++;
    handoffStats.wakeMs += t.seen - t.posted;
    handoffStats.workMs += t.done - t.seen;
    handoffStats.replyMs += clock() - t.done;
    const { order, region } = open;
    const parsed = TaskReply.safeParse(readReply(open.serving.mailbox));
    if (!parsed.success) {
      regions.release(region);
      dispatcher.failure(lane.id, order.taskId, `malformed reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`);
      return;
    }
    const reply = parsed.data;
    if (reply.type === 'error') {
      regions.release(region);
      dispatcher.failure(lane.id, order.taskId, reply.message);
      return;
    }
    if (reply.type !== 'result') {
      regions.release(region);
      dispatcher.failure(lane.id, order.taskId, reply.type === 'stale'
        ? `answered stale (weights version ${reply.version}, task ${order.version})`
        : `answered a range with a step loop's reply`);
      return;
    }
    dispatcher.answer(lane.id, {
      taskId: reply.taskId, version: reply.version, blocks: reply.blocks, computeMs: reply.computeMs,
      sums: region.floats.subarray(0, reply.blocks.length * gradLen),
      release: () => regions.release(region),
    });
  }

  /** Posts a range order to the lane's thread (which is idle). */
  function post(lane: Lane, order: RangeOrder): void {
    publish(order.version);
    const blocks = alignedBlocks(order.k, order.start, order.end).length;
    const region = regions.acquire(blocks);
    const serving = lane.serving;
    sendRegion(serving, region);
    Atomics.add(control, CONTROL_BUSY, 1);
    const seq = postOrder(serving.mailbox, { ...order, region: region.id });
    const open: Open = { order, region, serving, seq };
    lane.open = open;
    answered(serving.mailbox, seq).then(() => settle(lane, open));
  }

  function postQueued(lane: Lane): void {
    const order = lane.queued;
    lane.queued = null;
    if (order !== null && !closed && !lane.gone) post(lane, order);
  }

  /** Before the order that names it: the thread takes it from its port when it reads the order. */
  function sendRegion(serving: Serving, region: StepRegion): void {
    if (serving.known.has(region.id)) return;
    serving.port.postMessage({ id: region.id, buffer: region.buffer });
    serving.known.add(region.id);
  }

  function link(lane: Lane): WorkerLink {
    return {
      info: { id: lane.id, kind: 'thread', host: 'local', threads: 1 },
      send(order: RangeOrder) {
        if (closed || lane.gone) return;
        // A thread still in the step loop takes the range when it leaves it (the dispatcher times it as sent now).
        if (lane.loop !== null) lane.queued = order;
        else post(lane, order);
      },
      // A thread that answered wrongly is a bug, not an attacker: the dispatcher counts it against the range; nothing to cut.
      drop() {},
    };
  }

  /** The lane left the step loop: its answer says how (or that the loop threw). */
  function loopLeft(lane: Lane, loop: InLoop): void {
    if (closed || lane.loop !== loop) return;
    lane.loop = null;
    lane.failures = 0;
    const parsed = TaskReply.safeParse(readReply(loop.serving.mailbox));
    if (!parsed.success) loop.onLeave({ kind: 'error', message: `malformed reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}` });
    else if (parsed.data.type === 'steps') loop.onLeave({ kind: 'left', steps: parsed.data.steps });
    else loop.onLeave({ kind: 'error', message: parsed.data.type === 'error' ? parsed.data.message : `answered the step loop with a ${parsed.data.type} reply` });
    postQueued(lane);
  }

  const stepLanes: StepLanes = {
    board: stepBoard,
    count: threads,
    get ids() { return lanes.map((l) => l.id); },
    idle: () => lanes.every((l) => !l.gone && l.open === null && l.loop === null && l.queued === null),
    inLoop: () => lanes.some((l) => l.loop !== null),
    region(buffer) {
      return adopted.get(buffer) ?? adoptRegion(buffer);
    },
    enter(firstSeq, regionOf, onLeave) {
      for (const lane of lanes) {
        const serving = lane.serving;
        for (const region of regionOf) sendRegion(serving, region);
        const seq = postStepsOrder(serving.mailbox, 0, lane.index, threads, firstSeq);
        const loop: InLoop = { serving, seq, onLeave: (why) => onLeave(lane.index, why) };
        lane.loop = loop;
        answered(serving.mailbox, seq).then(() => loopLeft(lane, loop));
      }
    },
  };
  const adopted = new Map<SharedArrayBuffer, Region>();
  function adoptRegion(buffer: SharedArrayBuffer): Region {
    const region = regions.adopt(buffer);
    adopted.set(buffer, region);
    return region;
  }

  const barrier = new SharedArrayBuffer(4);
  const warm: WarmupTask = {
    type: 'warmup', protocol: THREAD_PROTOCOL_VERSION, session: opts.session, barrier, threads, timeoutMs: 60_000,
  };
  let replies: unknown[];
  try {
    replies = await Promise.all(Array.from({ length: threads }, () => pool.run(warm)));
  } catch (err) {
    await pool.destroy();
    throw dptError('DPT_ERR_WORKER', `worker threads did not start: ${(err as Error).message}`);
  }
  for (const raw of replies) {
    const parsed = ReadyReply.safeParse(raw);
    if (!parsed.success) {
      await pool.destroy();
      throw dptError('DPT_ERR_WORKER', `worker threads did not start: malformed ready reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`);
    }
    if (!parsed.data.complete) log(`worker threads: only ${Atomics.load(new Int32Array(barrier), 0)} of ${threads} started within 60 s; continuing`);
  }
  const prefix = opts.idPrefix ?? 't';
  for (let i = 0; i < threads; i++) {
    const lane: Lane = { id: `${prefix}${i}`, index: i, serving: null as unknown as Serving, open: null, loop: null, queued: null, failures: 0, gone: false };
    lane.serving = serve(lane);
    lanes.push(lane);
  }
  for (const lane of lanes) dispatcher.join(link(lane));
  return {
    threads,
    // The step loop writes the weights: only when they are the shared buffer the threads read.
    steps: direct ? stepLanes : null,
    handoff: () => ({ ...handoffStats }),
    async terminateThread(i) {
      const id = Atomics.load(lanes[i].serving.mailbox.words, W.THREAD_ID);
      const thread = pool.threads.find((t) => t.threadId === id);
      if (id <= 0 || thread === undefined) return false;
      await thread.terminate();
      return true;
    },
    async close() {
      if (closed) return;
      closed = true;
      exitSteps(stepBoard);
      for (const lane of lanes) {
        Atomics.store(lane.serving.mailbox.words, W.STOP, 1);
        Atomics.notify(lane.serving.mailbox.words, W.ORDER_SEQ);
        if (lane.open !== null) regions.release(lane.open.region);
        lane.open = null;
      }
      for (const lane of lanes) if (!lane.gone) dispatcher.leave(lane.id, 'closed');
      await pool.destroy();
    },
  };
}
