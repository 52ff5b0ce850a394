// The thread transport: N Piscina worker threads of this process, each one
// WorkerLink of the dispatcher (`t0`, `t1`, ...).
//
// Memory (DESIGN.md principle 2 and "Never detach an ArrayBuffer"):
//   - the training set is copied ONCE onto SharedArrayBuffers (wholeShared)
//     and every thread reads it in place;
//   - the weights: threads read a SharedArrayBuffer. When the weights board
//     already lives on one (the coordinator builds its model over it, see
//     sharedParams), publishing a version is one Atomics.store; otherwise the
//     board is copied in first (a network worker's weights arrive in frames);
//   - each task writes its partial sums into a result region, a
//     SharedArrayBuffer lent to that one task until it settles (RegionPool),
//     so a late or failed task can never scribble over an accepted answer.
// Nothing is transferred, so no isolate ever detaches a buffer.
//
// Piscina runs one task per thread at a time and replaces a thread that
// exits; a link is a lane of the pool, not a particular thread, which is all
// the dispatcher needs (each link holds at most one open task, and the pool
// has as many threads as links).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { isShared, toShared, type Dataset } from '../../src/data/dataset.js';
import { dptError } from '../../src/errors.js';
import { formatZodError } from '../../src/check/zod-format.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { activeKernelKind } from '../../src/tensor/setup.js';
import { kernelsModule } from '../../worker/kernels-setup.js';
import {
  CONTROL_LENGTH, CONTROL_VERSION, ReadyReply, TaskReply, THREAD_PROTOCOL_VERSION,
  type StepTask, type ThreadSetup, type WarmupTask,
} from '../../worker/thread-protocol.js';
import type { Dispatcher, RangeOrder, WorkerLink } from '../dispatch/dispatcher.js';
import type { WeightsBoard } from '../dispatch/weights-board.js';

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
  log?: (line: string) => void;
}

export interface ThreadTransport {
  readonly threads: number;
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

/** dist/worker/thread-worker.js, from dist/coordinator/transports (the CLI) or coordinator/transports (tests run the TS sources). */
export function threadWorkerFile(): string {
  const candidates = [
    new URL('../../worker/thread-worker.js', import.meta.url),
    new URL('../../dist/worker/thread-worker.js', import.meta.url),
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error('dist/worker/thread-worker.js not found: run `npm run build`');
}

interface Region {
  readonly buffer: SharedArrayBuffer;
  readonly floats: Float32Array;
  readonly blocks: number;
}

/** Result regions lent to one task at a time, sized in blocks of one gradient vector each. */
class RegionPool {
  private readonly free: Region[] = [];
  constructor(private readonly blockFloats: number) {}
  acquire(blocks: number): Region {
    const i = this.free.findIndex((r) => r.blocks >= blocks);
    if (i >= 0) return this.free.splice(i, 1)[0];
    const buffer = new SharedArrayBuffer(blocks * this.blockFloats * 4);
    return { buffer, floats: new Float32Array(buffer), blocks };
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
    train: { x: train.x.buffer as SharedArrayBuffer, y: train.y.buffer as SharedArrayBuffer, n: train.n, xSize, ySize },
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
  pool.on('error', (err: Error) => log(`worker thread error: ${err.message}; the pool replaces the thread`));

  const regions = new RegionPool(gradLen);
  let closed = false;

  /** Makes the board's weights version the one threads see (copying the weights in if they live elsewhere). */
  function publish(version: number): void {
    if (Atomics.load(control, CONTROL_VERSION) === version) return;
    if (!direct) shared.set(board.params);
    Atomics.store(control, CONTROL_VERSION, version);
  }

  function link(id: string): WorkerLink {
    return {
      info: { id, kind: 'thread', host: 'local', threads: 1 },
      send(order: RangeOrder) {
        if (closed) return;
        publish(order.version);
        const blocks = alignedBlocks(order.k, order.start, order.end).length;
        const region = regions.acquire(blocks);
        const task: StepTask = {
          type: 'step', protocol: THREAD_PROTOCOL_VERSION, session: opts.session,
          taskId: order.taskId, version: order.version, step: order.step,
          k: order.k, rows: order.rows, start: order.start, end: order.end,
          // A copy of just this range (a view would clone the whole batch's buffer into the task).
          indices: Uint32Array.from(order.indices), region: region.buffer,
          ...(order.fault === undefined ? {} : { fault: order.fault }),
        };
        pool.run(task).then(
          (raw: unknown) => {
            const parsed = TaskReply.safeParse(raw);
            if (!parsed.success) {
              regions.release(region);
              dispatcher.failure(id, order.taskId, `malformed reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`);
              return;
            }
            const reply = parsed.data;
            if (reply.type === 'stale') {
              regions.release(region);
              dispatcher.failure(id, order.taskId, `answered stale (weights version ${reply.version}, task ${order.version})`);
              return;
            }
            dispatcher.answer(id, {
              taskId: reply.taskId, version: reply.version, blocks: reply.blocks, computeMs: reply.computeMs,
              sums: region.floats.subarray(0, reply.blocks.length * gradLen),
              release: () => regions.release(region),
            });
          },
          (err: unknown) => {
            regions.release(region);
            if (!closed) dispatcher.failure(id, order.taskId, err instanceof Error ? err.message : String(err));
          },
        );
      },
      // A thread that answered wrongly is a bug, not an attacker: the dispatcher counts it against the range; nothing to cut.
      drop() {},
    };
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
  const ids = Array.from({ length: threads }, (_, i) => `${prefix}${i}`);
  for (const id of ids) dispatcher.join(link(id));
  return {
    threads,
    async close() {
      if (closed) return;
      closed = true;
      for (const id of ids) dispatcher.leave(id, 'closed');
      await pool.destroy();
    },
  };
}
