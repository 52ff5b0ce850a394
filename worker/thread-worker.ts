// The worker-thread side of the thread transport: a Piscina task handler,
// a thin shell around src/train/range.ts.
//
// Per thread, once per session (cached by the session key, a hash of model,
// loss and seed): validate Piscina's workerData (ThreadSetup), instantiate the
// coordinator's kernels (the WebAssembly module it compiled, with this
// thread's own memory), build the model and a RangeWorker over the shared
// training set. The master weights stay on the coordinator's
// SharedArrayBuffer; the RangeWorker copies them once per weights version.
//
// Once per thread, when the pool starts (WarmupTask): build the session and
// wait at a barrier for the other threads.
//
// Per task (StepTask, validated on receipt):
//   1. carry out an injected fault, if any (stall before the work);
//   2. check the weights version: a task cut for older weights answers
//      `stale` (it is late; the coordinator has moved on);
//   3. compute the range's aligned-block sums straight into the task's
//      result region;
//   4. check the version again and answer which blocks were written.
import { threadId } from 'node:worker_threads';
import { workerData } from 'piscina';
import { dptError } from '../src/errors.js';
import { formatZodError } from '../src/check/zod-format.js';
import { getLoss } from '../src/losses/index.js';
import { buildModel } from '../src/model/model.js';
import { createRangeWorker, type RangeWorker } from '../src/train/range.js';
import { setupKernels } from './kernels-setup.js';
import {
  CONTROL_VERSION, StepTask, ThreadSetup, WarmupTask, type ReadyReply, type TaskReply,
} from './thread-protocol.js';
import type { FaultOrder } from '../src/protocol/messages.js';

interface Session {
  readonly id: string;
  readonly worker: RangeWorker;
  readonly control: Int32Array;
  /** The master weights (shared, written by the coordinator between steps). */
  readonly shared: Float32Array;
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
  const worker = createRangeWorker(model, getLoss(setup.loss), setup.seed, { x, y, n, xSize, ySize }, setup.maxBatch);
  const session: Session = { id, worker, control: new Int32Array(setup.control), shared };
  sessions.set(id, session);
  return session;
}

/** Blocks this thread for ms milliseconds: a real stall, the event loop included. */
function stall(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function faultMidRange(fault: FaultOrder | undefined, taskId: number): void {
  if (fault?.kind === 'crash' || fault?.kind === 'disconnect') {
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
  const problem = s.worker.check(t);
  if (problem !== null) throw dptError('DPT_ERR_MESSAGE', `worker thread: task ${t.taskId}: ${problem}`);
  const gradLen = s.worker.gradLen;
  const region = new Float32Array(t.region);
  // One copy per weights version into the kernels' memory (the wasm kernels
  // would otherwise copy the weights in at every matrix product).
  s.worker.setWeights(t.version, s.shared);
  const blocks = s.worker.compute(t, (b, _node, sum) => {
    if ((b + 1) * gradLen * 4 > t.region.byteLength) {
      throw dptError('DPT_ERR_MESSAGE', `worker thread: result region of ${t.region.byteLength} bytes is too small for block ${b}`);
    }
    // Summed in the kernels' memory, then copied out once (the region is outside it).
    region.set(sum, b * gradLen);
    if (b === 0) faultMidRange(t.fault, t.taskId);
  });
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
