// The worker-thread side of `--workers N`: a Piscina task handler.
//
// Per thread, once per session (cached by the session key, a hash of model,
// loss and seed): validate Piscina's workerData (ThreadSetup), instantiate the
// coordinator's kernels (the WebAssembly module it compiled, with this
// thread's own memory), build the model, the loss, and row buffers for the
// largest batch, all in the kernels' memory. The master weights stay on the
// coordinator's SharedArrayBuffer; this thread copies them into its model
// once per weights version (one memcpy, ~0.4 MB for the MLP).
//
// Once per thread, when the pool starts (WarmupTask): build the session and
// wait at a barrier for the other threads.
//
// Per task (StepTask, validated on receipt):
//   1. carry out an injected fault, if any (stall before the work);
//   2. check the weights version: a task cut for older weights answers
//      `stale` (it is late; the coordinator has moved on);
//   3. gather the rows of micro-shards [start, end) from the shared dataset;
//   4. for each aligned block of the range (src/reduce/tree.ts), compute its
//      sum in the fixed tree order straight into the task's result region;
//   5. check the version again and answer which blocks were written.
// Nothing here decides what is summed with what: the tree does.
import { threadId } from 'node:worker_threads';
import { workerData } from 'piscina';
import { dptError } from '../src/errors.js';
import { formatZodError } from '../src/check/zod-format.js';
import { getLoss } from '../src/losses/index.js';
import type { Loss } from '../src/losses/loss.js';
import { buildModel, type Model } from '../src/model/model.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { alignedBlocks } from '../src/reduce/tree.js';
import { computeNode, shardBounds, type BatchData } from '../src/train/batch.js';
import { gradLength } from '../src/train/step.js';
import { setupKernels } from './kernels-setup.js';
import {
  CONTROL_VERSION, StepTask, ThreadSetup, WarmupTask, type ReadyReply, type ThreadFault, type TaskReply,
} from './thread-protocol.js';

interface Session {
  readonly id: string;
  readonly model: Model;
  readonly loss: Loss;
  readonly seed: number;
  readonly maxBatch: number;
  readonly x: Float32Array; // (n, xSize), shared
  readonly y: Float32Array; // (n, ySize), shared
  readonly n: number;
  readonly xSize: number;
  readonly ySize: number;
  readonly control: Int32Array;
  /** The master weights (shared, written by the coordinator between steps). */
  readonly shared: Float32Array;
  /** The weights version model.params holds a copy of (-1: none yet). */
  copiedVersion: number;
  /** This thread's batch rows: (maxBatch, xSize) and (maxBatch, ySize). */
  readonly xBuf: Float32Array;
  readonly yBuf: Float32Array;
  /** One block's sum, in the kernels' memory. */
  readonly blockSum: Float32Array;
  /** Per-level scratch of the tree reduction, reused across tasks. */
  readonly scratch: Float32Array[];
  readonly gradLen: number;
}

const sessions = new Map<string, Session>();

function openSession(id: string): Session {
  const cached = sessions.get(id);
  if (cached !== undefined) return cached;
  const parsed = ThreadSetup.safeParse(workerData);
  if (!parsed.success) throw dptError('DPT_ERR_MESSAGE', `worker thread: invalid setup (workerData)\n${formatZodError(parsed.error)}`);
  const setup = parsed.data;
  if (setup.session !== id) throw dptError('DPT_ERR_MESSAGE', `worker thread: task for session ${id.slice(0, 12)}, but this pool serves ${setup.session.slice(0, 12)}`);
  const { n, xSize, ySize } = setup.train;
  const x = new Float32Array(setup.train.x);
  const y = new Float32Array(setup.train.y);
  if (x.length !== n * xSize || y.length !== n * ySize) {
    throw dptError('DPT_ERR_MESSAGE', `worker thread: dataset buffers hold ${x.length} and ${y.length} floats, expected ${n} * ${xSize} and ${n} * ${ySize}`);
  }
  // Before building: the model's buffers go where the kernels read them in place.
  setupKernels(setup.kernels.kind, setup.kernels.kind === 'wasm' ? { module: setup.kernels.module } : {});
  const model = buildModel(setup.model);
  const shared = new Float32Array(setup.params);
  if (shared.length !== model.params.length) {
    throw dptError('DPT_ERR_MESSAGE', `worker thread: the shared weights hold ${shared.length} floats, the model has ${model.params.length}`);
  }
  if (model.inSize !== xSize) throw dptError('DPT_ERR_MESSAGE', `worker thread: the model takes ${model.inSize} inputs, the dataset has ${xSize}`);
  const session: Session = {
    id, model, loss: getLoss(setup.loss), seed: setup.seed, maxBatch: setup.maxBatch,
    x, y, n, xSize, ySize, control: new Int32Array(setup.control), shared, copiedVersion: -1,
    xBuf: allocFloats(setup.maxBatch * xSize), yBuf: allocFloats(setup.maxBatch * ySize),
    blockSum: allocFloats(gradLength(model)), scratch: [], gradLen: gradLength(model),
  };
  sessions.set(id, session);
  return session;
}

/** Blocks this thread for ms milliseconds: a real stall, the event loop included. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function faultMidRange(fault: ThreadFault | undefined, taskId: number): void {
  if (fault?.kind === 'crash') {
    // In a worker thread process.exit ends the thread, not the process.
    process.exit(70);
  }
  if (fault?.kind === 'throw') throw new Error(`chaos: task ${taskId} throws in the middle of its range`);
}

/** Builds the session, then waits until all `threads` threads have arrived. */
function warmup(raw: unknown): ReadyReply {
  const parsed = WarmupTask.safeParse(raw);
  if (!parsed.success) throw dptError('DPT_ERR_MESSAGE', `worker thread: invalid warm-up task\n${formatZodError(parsed.error)}`);
  const t = parsed.data;
  openSession(t.session);
  const barrier = new Int32Array(t.barrier);
  Atomics.add(barrier, 0, 1);
  Atomics.notify(barrier, 0);
  const deadline = performance.now() + t.timeoutMs;
  let arrived = Atomics.load(barrier, 0);
  while (arrived < t.threads) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    Atomics.wait(barrier, 0, arrived, left);
    arrived = Atomics.load(barrier, 0);
  }
  return { type: 'ready', threadId, complete: arrived >= t.threads };
}

export default function runTask(raw: unknown): TaskReply | ReadyReply {
  if ((raw as { type?: unknown } | null)?.type === 'warmup') return warmup(raw);
  const parsed = StepTask.safeParse(raw);
  if (!parsed.success) throw dptError('DPT_ERR_MESSAGE', `worker thread: invalid task\n${formatZodError(parsed.error)}`);
  const t = parsed.data;
  const s = openSession(t.session);
  const t0 = performance.now();
  if (t.fault?.kind === 'stall') stall(t.fault.ms ?? 0);
  if (Atomics.load(s.control, CONTROL_VERSION) !== t.version) {
    return { type: 'stale', taskId: t.taskId, version: Atomics.load(s.control, CONTROL_VERSION), threadId };
  }

  // One copy per weights version into the kernels' memory (the wasm kernels
  // would otherwise copy the weights in at every matrix product).
  if (s.copiedVersion !== t.version) {
    s.model.params.set(s.shared);
    s.copiedVersion = t.version;
  }

  const rows = t.indices.length;
  if (rows > s.maxBatch) throw dptError('DPT_ERR_MESSAGE', `worker thread: batch of ${rows} rows, at most ${s.maxBatch}`);
  const blocks = alignedBlocks(t.k, t.start, t.end);
  if (t.region.byteLength < blocks.length * s.gradLen * 4) {
    throw dptError('DPT_ERR_MESSAGE', `worker thread: result region of ${t.region.byteLength} bytes, ${blocks.length} blocks need ${blocks.length * s.gradLen * 4}`);
  }

  // Gather the rows of this range only, at their places in the batch.
  const rowStart = shardBounds(rows, t.k, t.start)[0];
  const rowEnd = shardBounds(rows, t.k, t.end - 1)[1];
  const { xSize, ySize } = s;
  for (let r = rowStart; r < rowEnd; r++) {
    const i = t.indices[r];
    if (i >= s.n) throw dptError('DPT_ERR_MESSAGE', `worker thread: indices[${r}] = ${i} is not a sample index in 0..${s.n - 1}`);
    s.xBuf.set(s.x.subarray(i * xSize, (i + 1) * xSize), r * xSize);
    s.yBuf.set(s.y.subarray(i * ySize, (i + 1) * ySize), r * ySize);
  }
  const data: BatchData = { x: s.xBuf, y: s.yBuf, rows, xSize, ySize };
  const keys = { seed: s.seed, step: t.step };

  const region = new Float32Array(t.region);
  for (let b = 0; b < blocks.length; b++) {
    // Summed in the kernels' memory, then copied out once (the region is outside it).
    computeNode(s.model, s.loss, data, t.k, keys, blocks[b].level, blocks[b].index, s.blockSum, s.scratch);
    region.set(s.blockSum, b * s.gradLen);
    if (b === 0) faultMidRange(t.fault, t.taskId);
  }
  if (t.fault?.kind === 'corrupt') region[t.fault.index ?? 0] += 1;

  const version = Atomics.load(s.control, CONTROL_VERSION);
  if (version !== t.version) return { type: 'stale', taskId: t.taskId, version, threadId };
  if (t.fault?.kind === 'garble') return { type: 'result', taskId: t.taskId, blocks: 'garbled' } as unknown as TaskReply;
  return {
    type: 'result', taskId: t.taskId, version,
    blocks: blocks.map((node) => ({ level: node.level, index: node.index })),
    computeMs: performance.now() - t0, threadId,
  };
}
