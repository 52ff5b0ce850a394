// The worker-thread side of the thread transport: Piscina task handlers,
// a thin shell around src/train/range.ts.
//
// Per thread, once per session (cached by the session key, a hash of model,
// loss and seed): validate Piscina's workerData (ThreadSetup), instantiate the
// coordinator's kernels (the WebAssembly module it compiled, with this
// thread's own memory), build the model and a RangeWorker over the training
// set (the thread's own copy if the coordinator says so, else the shared
// one). The master weights stay on the coordinator's SharedArrayBuffer; the
// RangeWorker copies them once per weights version.
//
// Once per thread, when the pool starts (WarmupTask): build the session and
// wait at a barrier for the other threads.
//
// Then, for the life of the thread (ServeTask): the serve loop. It waits for
// an order in its mailbox (thread-mailbox.ts: spinning for a while first,
// then Atomics.wait), answers it there, and waits again. Per order
// (StepTask, validated on receipt):
//   1. carry out an injected fault, if any (stall before the work);
//   2. check the weights version: an order cut for older weights answers
//      `stale` (it is late; the coordinator has moved on);
//   3. compute the range's aligned-block sums straight into the order's
//      result region;
//   4. check the version again and answer which blocks were written.
// An order that throws is answered `error` with the message; a crash (or
// the `crash` fault) ends the thread, and with it the serve task.
import { receiveMessageOnPort, threadId, type MessagePort } from 'node:worker_threads';
import { workerData } from 'piscina';
import { dptError } from '../../src/errors.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel } from '../../src/model/model.js';
import { createRangeWorker } from '../../src/train/range.js';
import { setupKernels } from '../kernels/setup.js';
import {
  CONTROL_BUSY, CONTROL_VERSION, expectThreadMessage, RegionMessage, ServeTask, StepTask, ThreadSetup, WarmupTask, type ReadyReply, type ServedReply,
} from './protocol.js';
import { markSeen, openMailbox, ORDER_STEPS, postReply, readOrder, W, type Mailbox, type MailboxReply } from './mailbox.js';
import { H, MAX_LANES, MAX_STATE_ARRAYS, openStepBoard, type StepBoard } from '../../src/steploop/board.js';
import { NOT_EQUAL, runStepLoop, waitFor, type Leave, type StepSession } from '../../src/steploop/lane.js';
import { nodeRounding } from '../../src/reduce/bf16.js';
import type { FaultOrder } from '../../src/protocol/messages.js';

interface Session extends StepSession {
  readonly id: string;
  readonly control: Int32Array;
  /** Largest global batch, in rows. */
  readonly maxBatch: number;
}

const sessions = new Map<string, Session>();

function openSession(id: string): Session {
  const cached = sessions.get(id);
  if (cached !== undefined) return cached;
  const setup = expectThreadMessage(ThreadSetup, workerData, 'setup (workerData)');
  if (setup.session !== id) throw dptError('DPT_ERR_MESSAGE', `worker thread: task for session ${id.slice(0, 12)}, but this pool serves ${setup.session.slice(0, 12)}`);
  const { n, xSize, ySize } = setup.train;
  // Rows gathered out of a SharedArrayBuffer go through V8's relaxed-atomic copy, word by word: 3% of
  // the MNIST MLP's compute on a thread. The coordinator says whether the copies fit (OWN_COPY_BYTES).
  const x = setup.train.ownCopy ? new Float32Array(setup.train.x).slice() : new Float32Array(setup.train.x);
  const y = setup.train.ownCopy ? new Float32Array(setup.train.y).slice() : new Float32Array(setup.train.y);
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
  const session: Session = {
    id, worker, control: new Int32Array(setup.control), shared, maxBatch: setup.maxBatch, wire: setup.gradWire ?? 'f32',
    round: nodeRounding(setup.gradWire ?? 'f32', model.numTrainable),
  };
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
  const t = expectThreadMessage(WarmupTask, raw, 'warm-up task');
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

/** The result regions this serve loop has been sent, by id. */
export type Regions = Map<number, Float32Array>;

/** Takes the regions waiting on the port into `regions`. */
function receiveRegions(port: MessagePort, regions: Regions): void {
  for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
    const region = expectThreadMessage(RegionMessage, m.message, 'region message');
    regions.set(region.id, new Float32Array(region.buffer));
  }
}

/**
 * Computes one order into its region and says what was written. Throws on
 * an invalid order (DPT_ERR_MESSAGE, naming the field) and on the `throw`
 * fault; exits the thread on `crash` and `disconnect`.
 */
export function runOrder(session: string, raw: unknown, regionOf: (id: number) => Float32Array | undefined): MailboxReply {
  const t = expectThreadMessage(StepTask, raw, 'task');
  const s = openSession(session);
  const t0 = performance.now();
  if (t.fault?.kind === 'stall') stall(t.fault.ms ?? 0);
  if (Atomics.load(s.control, CONTROL_VERSION) !== t.version) {
    return { type: 'stale', taskId: t.taskId, version: Atomics.load(s.control, CONTROL_VERSION), threadId };
  }
  const problem = s.worker.check(t);
  if (problem !== null) throw dptError('DPT_ERR_MESSAGE', `worker thread: task ${t.taskId}: ${problem}`);
  const region = regionOf(t.region);
  if (region === undefined) throw dptError('DPT_ERR_MESSAGE', `worker thread: task ${t.taskId}: no result region ${t.region}`);
  const gradLen = s.worker.gradLen;
  // One copy per weights version into the kernels' memory (the wasm kernels
  // would otherwise copy the weights in at every matrix product).
  s.worker.setWeights(t.version, s.shared);
  const blocks = s.worker.compute(t, (b, _node, sum) => {
    if ((b + 1) * gradLen > region.length) {
      throw dptError('DPT_ERR_MESSAGE', `worker thread: result region of ${region.byteLength} bytes is too small for block ${b}`);
    }
    // Summed in the kernels' memory, then copied out once (the region is outside it).
    region.set(sum, b * gradLen);
    if (b === 0) faultMidRange(t.fault, t.taskId);
  }, s.round);
  if (t.fault?.kind === 'corrupt') region[t.fault.index ?? 0] += 1;

  const version = Atomics.load(s.control, CONTROL_VERSION);
  if (version !== t.version) return { type: 'stale', taskId: t.taskId, version, threadId };
  return {
    type: 'result', taskId: t.taskId, version,
    blocks: t.fault?.kind === 'garble' ? 'garbled' : blocks.map((node) => ({ level: node.level, index: node.index })),
    computeMs: performance.now() - t0, threadId,
  };
}

/** Waits for an order after `seen` (or STOP): spins for up to spinUs, then sleeps on the word. False on STOP. */
function nextOrder(mb: Mailbox, seen: number, spinUs: number): boolean {
  const stopped: Leave = { exit: mb.words, exitIndex: W.STOP, exitAt: 0, failed: null, failedIndex: 0 };
  return waitFor(mb.words, W.ORDER_SEQ, NOT_EQUAL, seen, stopped, spinUs, true) && Atomics.load(mb.words, W.STOP) === 0;
}

/** Runs the step loop (thread-steps.ts) as the mailbox's order says, until the coordinator ends it. */
function steps(s: Session, mb: Mailbox, board: StepBoard, regionOf: (id: number) => Float32Array | undefined, spinUs: number): MailboxReply {
  const w = mb.words;
  const taskId = w[W.TASK_ID];
  const lane = w[W.START];
  const lanes = w[W.END];
  if (!(lanes >= 1 && lanes <= MAX_LANES && lane >= 0 && lane < lanes && Atomics.load(board.header, H.LANES) === lanes)) {
    throw dptError('DPT_ERR_MESSAGE', `worker thread: step loop order for thread ${lane} of ${lanes}`);
  }
  const region = (id: number, what: string) => {
    const r = regionOf(id);
    if (r === undefined) throw dptError('DPT_ERR_MESSAGE', `worker thread: step loop: no result region ${id} (${what})`);
    return r;
  };
  const regions = Array.from({ length: lanes }, (_, j) => region(Atomics.load(board.header, H.REGIONS + j), `thread ${j}'s blocks`));
  const state: Float32Array[] = [];
  for (let i = 0; i < MAX_STATE_ARRAYS; i++) {
    const id = Atomics.load(board.header, H.STATE + i);
    if (id >= 0) state.push(region(id, `the optimizer's state array ${i}`));
  }
  const applied = runStepLoop(s, board, { lane, lanes, firstSeq: w[W.STEP], regions, state }, spinUs);
  return { type: 'steps', taskId, threadId, steps: applied };
}

/** The serve loop (see the top of this file). Returns when the mailbox's STOP word is set. */
function serve(raw: unknown): ServedReply {
  const t = expectThreadMessage(ServeTask, raw, 'serve task');
  const s = openSession(t.session);
  const mb = openMailbox(t.mailbox);
  const board = openStepBoard(t.board, s.maxBatch);
  const regions: Regions = new Map();
  const regionOf = (id: number) => {
    if (!regions.has(id)) receiveRegions(t.port, regions);
    return regions.get(id);
  };
  Atomics.store(mb.words, W.THREAD_ID, threadId);
  let seen = Atomics.load(mb.words, W.DONE_SEQ);
  let orders = 0;
  let spin = false;
  try {
    while (nextOrder(mb, seen, spin ? t.spinUs : 0)) {
      seen = Atomics.load(mb.words, W.ORDER_SEQ);
      markSeen(mb);
      const isRange = mb.words[W.KIND] !== ORDER_STEPS;
      const order = isRange ? readOrder(mb) : null;
      let reply: MailboxReply;
      try {
        reply = isRange ? runOrder(t.session, order, regionOf) : steps(s, mb, board, regionOf, t.spinUs);
      } catch (err) {
        reply = { type: 'error', taskId: mb.words[W.TASK_ID], threadId, message: err instanceof Error ? err.message : String(err) };
      }
      // The last range of a step to finish does not spin: the coordinator's turn comes next, on this core.
      spin = !isRange || Atomics.sub(s.control, CONTROL_BUSY, 1) > 1;
      postReply(mb, seen, reply);
      orders++;
    }
  } finally {
    t.port.close();
  }
  return { type: 'served', orders };
}

export default function runTask(raw: unknown): ReadyReply | ServedReply {
  const type = (raw as { type?: unknown } | null)?.type;
  if (type === 'warmup') return warmup(raw);
  if (type === 'serve') return serve(raw);
  throw dptError('DPT_ERR_MESSAGE', `worker thread: unknown task type ${JSON.stringify(type)}`);
}
