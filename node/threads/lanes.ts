// The lanes of the thread transport: one per thread, each a WorkerLink of
// the dispatcher (`t0`, `t1`, ...) and a lane of the step loop. A lane is a
// lane of the pool, not a particular thread: its serve task (thread-entry.ts)
// holds a thread for good and takes orders from the lane's mailbox
// (mailbox.ts); when the thread dies, the serve task fails, the lane's open
// order is reported failed, and a new serve task (new mailbox, new port)
// runs on Piscina's replacement thread.
//
// Per order nothing is posted: sending is a few stores into the mailbox and
// an Atomics.notify; the answer is a store the coordinator awaits with
// Atomics.waitAsync, off its event loop's critical path.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Piscina } from 'piscina';
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import type { RangeOrder, WorkerLink } from '../../src/dispatch/contract.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import type { StepBoard } from '../../src/steploop/board.js';
import { clock, createMailbox, handoff, postOrder, postStepsOrder, readReply, W, type Mailbox } from './mailbox.js';
import { CONTROL_BUSY, CONTROL_VERSION, decodeThreadMessage, malformed, TaskReply, THREAD_PROTOCOL_VERSION, type ServeTask } from './protocol.js';
import type { Region, RegionPool, StepRegion } from './regions.js';

/** Where the orders' time went (cumulative ms over answered orders). */
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

/** What the step loop (coordinator/engines/step-loop.ts) drives: the board, and the threads as lanes of it. */
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

/** What the lanes share with the transport that made them. */
export interface LanesContext {
  readonly pool: Piscina;
  readonly dispatcher: Dispatcher;
  readonly board: WeightsBoard;
  /** The weights the threads read: the board's own buffer when it is shared (`direct`), else a shared copy. */
  readonly shared: Float32Array;
  readonly direct: boolean;
  readonly control: Int32Array;
  readonly regions: RegionPool;
  readonly stepBoard: StepBoard;
  readonly session: string;
  readonly maxBatch: number;
  readonly spinUs: number;
  readonly gradLen: number;
}

/** A thread whose serve task fails this often in a row without answering an order leaves the run. */
const MAX_SERVE_FAILURES = 8;

// NOTE: Node 20 (V8 11.3) has Atomics.waitAsync; tsconfig's lib ES2022 does not declare it.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

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

export interface Lane {
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

/** Resolves when the serve loop has answered order `seq` (never, if its thread dies first). */
async function answered(mailbox: Mailbox, seq: number): Promise<void> {
  for (;;) {
    const done = Atomics.load(mailbox.words, W.DONE_SEQ);
    if (done === seq) return;
    const wait = waitAsync(mailbox.words, W.DONE_SEQ, done);
    if (wait.async) await wait.value;
  }
}

export class ThreadLanes {
  readonly lanes: Lane[] = [];
  readonly handoffStats: HandoffStats = { orders: 0, wakeMs: 0, workMs: 0, replyMs: 0 };
  private closed = false;

  constructor(private readonly cx: LanesContext) {}

  /** Adds lane `index` with the given worker id and starts its serve loop (the caller joins its link to the dispatcher). */
  add(id: string, index: number): Lane {
    const lane: Lane = { id, index, serving: null as unknown as Serving, open: null, loop: null, queued: null, failures: 0, gone: false };
    lane.serving = this.serve(lane);
    this.lanes.push(lane);
    return lane;
  }

  /** Makes the board's weights version the one threads see (copying the weights in if they live elsewhere). */
  private publish(version: number): void {
    const { control, direct, shared, board } = this.cx;
    if (Atomics.load(control, CONTROL_VERSION) === version) return;
    if (!direct) shared.set(board.params);
    Atomics.store(control, CONTROL_VERSION, version);
  }

  /** Starts a serve task on the pool for the lane (a fresh mailbox and port). */
  private serve(lane: Lane): Serving {
    const { port1, port2 } = new MessageChannel();
    const serving: Serving = { mailbox: createMailbox(this.cx.maxBatch), port: port1, known: new Set() };
    const task: ServeTask = {
      type: 'serve', protocol: THREAD_PROTOCOL_VERSION, session: this.cx.session, mailbox: serving.mailbox.buffer,
      board: this.cx.stepBoard.buffer, port: port2, spinUs: this.cx.spinUs,
    };
    // The task holds a thread for good: it ends when the thread dies or close() stops it.
    this.cx.pool.run(task, { transferList: [port2] }).then(
      () => {},
      (err: unknown) => this.serveEnded(lane, serving, err instanceof Error ? err.message : String(err)),
    );
    return serving;
  }

  /** The lane's thread died (or its serve loop threw): fail its open order, and serve again on the replacement. */
  private serveEnded(lane: Lane, serving: Serving, reason: string): void {
    const { control, regions, dispatcher } = this.cx;
    serving.port.close();
    if (this.closed || lane.gone || lane.serving !== serving) return;
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
    lane.serving = this.serve(lane);
    loop?.onLeave({ kind: 'died', message: reason });
    if (open !== null) {
      regions.release(open.region);
      dispatcher.failure(lane.id, open.order.taskId, reason);
    }
    this.postQueued(lane);
  }

  private settle(lane: Lane, open: Open): void {
    if (this.closed || lane.open !== open) return; // the thread died meanwhile: already failed
    const { regions, dispatcher, gradLen } = this.cx;
    lane.open = null;
    lane.failures = 0;
    const t = handoff(open.serving.mailbox);
    const stats = this.handoffStats;
    stats.orders++;
    stats.wakeMs += t.seen - t.posted;
    stats.workMs += t.done - t.seen;
    stats.replyMs += clock() - t.done;
    const { order, region } = open;
    const decoded = decodeThreadMessage(TaskReply, readReply(open.serving.mailbox));
    if (!decoded.ok) {
      regions.release(region);
      dispatcher.failure(lane.id, order.taskId, malformed('reply', decoded.problems));
      return;
    }
    const reply = decoded.value;
    if (reply.type !== 'result') {
      regions.release(region);
      dispatcher.failure(lane.id, order.taskId, reply.type === 'error' ? reply.message : reply.type === 'stale'
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
  private post(lane: Lane, order: RangeOrder): void {
    this.publish(order.version);
    const blocks = alignedBlocks(order.k, order.start, order.end).length;
    const region = this.cx.regions.acquire(blocks);
    const serving = lane.serving;
    this.sendRegion(serving, region);
    Atomics.add(this.cx.control, CONTROL_BUSY, 1);
    const seq = postOrder(serving.mailbox, { ...order, region: region.id });
    const open: Open = { order, region, serving, seq };
    lane.open = open;
    void answered(serving.mailbox, seq).then(() => this.settle(lane, open));
  }

  private postQueued(lane: Lane): void {
    const order = lane.queued;
    lane.queued = null;
    if (order !== null && !this.closed && !lane.gone) this.post(lane, order);
  }

  /** Before the order that names it: the thread takes it from its port when it reads the order. */
  private sendRegion(serving: Serving, region: StepRegion): void {
    if (serving.known.has(region.id)) return;
    serving.port.postMessage({ id: region.id, buffer: region.buffer });
    serving.known.add(region.id);
  }

  link(lane: Lane): WorkerLink {
    return {
      info: { id: lane.id, kind: 'thread', host: 'local', threads: 1 },
      send: (order: RangeOrder) => {
        if (this.closed || lane.gone) return;
        // A thread still in the step loop takes the range when it leaves it (the dispatcher times it as sent now).
        if (lane.loop !== null) lane.queued = order;
        else this.post(lane, order);
      },
      // A thread that answered wrongly is a bug, not an attacker: the dispatcher counts it against the range; nothing to cut.
      drop() {},
    };
  }

  /** The lane left the step loop: its answer says how (or that the loop threw). */
  private loopLeft(lane: Lane, loop: InLoop): void {
    if (this.closed || lane.loop !== loop) return;
    lane.loop = null;
    lane.failures = 0;
    const decoded = decodeThreadMessage(TaskReply, readReply(loop.serving.mailbox));
    if (!decoded.ok) loop.onLeave({ kind: 'error', message: malformed('reply', decoded.problems) });
    else if (decoded.value.type === 'steps') loop.onLeave({ kind: 'left', steps: decoded.value.steps });
    else loop.onLeave({ kind: 'error', message: decoded.value.type === 'error' ? decoded.value.message : `answered the step loop with a ${decoded.value.type} reply` });
    this.postQueued(lane);
  }

  /** The lanes as the step loop drives them. */
  stepLanes(): StepLanes {
    const lanes = this.lanes;
    return {
      board: this.cx.stepBoard,
      count: lanes.length,
      get ids() { return lanes.map((l) => l.id); },
      idle: () => lanes.every((l) => !l.gone && l.open === null && l.loop === null && l.queued === null),
      inLoop: () => lanes.some((l) => l.loop !== null),
      region: (buffer) => this.cx.regions.adopt(buffer),
      enter: (firstSeq, regionOf, onLeave) => {
        for (const lane of lanes) {
          const serving = lane.serving;
          for (const region of regionOf) this.sendRegion(serving, region);
          const seq = postStepsOrder(serving.mailbox, 0, lane.index, lanes.length, firstSeq);
          const loop: InLoop = { serving, seq, onLeave: (why) => onLeave(lane.index, why) };
          lane.loop = loop;
          void answered(serving.mailbox, seq).then(() => this.loopLeft(lane, loop));
        }
      },
    };
  }

  /** Stops every serve loop (the threads leave the step loop first); the regions of open orders go back. */
  close(): void {
    this.closed = true;
    for (const lane of this.lanes) {
      Atomics.store(lane.serving.mailbox.words, W.STOP, 1);
      Atomics.notify(lane.serving.mailbox.words, W.ORDER_SEQ);
      if (lane.open !== null) this.cx.regions.release(lane.open.region);
      lane.open = null;
    }
  }

  isClosed(): boolean {
    return this.closed;
  }
}
