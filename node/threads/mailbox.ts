// A thread's mailbox: the shared memory through which the coordinator hands
// a resident worker thread its orders and the thread answers, one order at
// a time, with no message per step (docs/design.md "Facts measured here": a
// Piscina task costs ~70 us, and on this VM 0.2-0.4 ms until a sleeping
// thread runs again; a store and a load of a shared word cost nothing).
//
// One SharedArrayBuffer per serve loop (a lane's thread; a replacement
// thread gets a fresh one), written by two sides in turns:
//   - the coordinator writes the order fields, then stores ORDER_SEQ + 1 and
//     notifies (the thread spins a little, then Atomics.waits on ORDER_SEQ);
//   - the thread reads the order, computes, writes the reply fields, then
//     stores DONE_SEQ = ORDER_SEQ and notifies (the coordinator's
//     Atomics.waitAsync on DONE_SEQ resolves).
// The sequence words order everything else (Atomics.store/load are
// sequentially consistent), so the other fields are plain reads and writes.
// Neither side trusts the other's words: the thread validates the decoded
// order (StepTask), the coordinator the decoded reply (TaskReply).
import { FAULT_KINDS } from '../../src/protocol/faults.js';
import type { FaultOrder } from '../../src/protocol/messages.js';

/** Int32 words of the mailbox. */
export const W = {
  /** Orders written so far (the thread waits on it). */
  ORDER_SEQ: 0,
  /** The last order answered (the coordinator waits on it). */
  DONE_SEQ: 1,
  /** 1: the serve loop returns. */
  STOP: 2,
  TASK_ID: 3,
  VERSION: 4,
  STEP: 5,
  K: 6,
  ROWS: 7,
  START: 8,
  END: 9,
  /** Sample indices in the indices area. */
  INDICES: 10,
  /** Which result region to write into (RegionPool id). */
  REGION: 11,
  /** 0: none, else 1 + index in FAULT_KINDS. */
  FAULT_KIND: 12,
  FAULT_MS: 13,
  FAULT_INDEX: 14,
  /** The serving thread's threadId (written when its serve loop starts). */
  THREAD_ID: 22,
  /** ORDER_RANGE, or ORDER_STEPS: enter the step loop (START: this thread's index, END: threads, STEP: first sequence number). */
  KIND: 21,
  /** REPLY_RESULT, REPLY_STALE, REPLY_ERROR or REPLY_STEPS. */
  R_STATUS: 15,
  R_TASK_ID: 16,
  R_VERSION: 17,
  R_THREAD_ID: 18,
  /** Tree nodes written (-1: a garbled reply). */
  R_BLOCKS: 19,
  /** Bytes of the error text. */
  R_TEXT: 20,
  /** (level, index) pairs of the nodes written, MAX_BLOCKS of them. */
  R_NODES: 32,
} as const;

export const REPLY_RESULT = 1;
export const REPLY_STALE = 2;
export const REPLY_ERROR = 3;
/** The thread left the step loop (R_BLOCKS: steps it applied). */
export const REPLY_STEPS = 4;

export const ORDER_RANGE = 0;
export const ORDER_STEPS = 1;

/** More aligned blocks than any range of up to 2^31 micro-shards has. */
export const MAX_BLOCKS = 64;
const WORDS = W.R_NODES + 2 * MAX_BLOCKS;
/** Float64 slots after the words: the compute time, and when (performance.timeOrigin + now(), ms) the order was posted, seen and answered. */
const F64_COMPUTE_MS = Math.ceil(WORDS / 2);
const F64_POSTED = F64_COMPUTE_MS + 1;
const F64_SEEN = F64_COMPUTE_MS + 2;
const F64_DONE = F64_COMPUTE_MS + 3;
const TEXT_OFFSET = 8 * (F64_DONE + 1);
export const TEXT_BYTES = 1024;
const INDICES_OFFSET = TEXT_OFFSET + TEXT_BYTES;

export interface Mailbox {
  readonly buffer: SharedArrayBuffer;
  readonly words: Int32Array;
  readonly f64: Float64Array;
  readonly text: Uint8Array;
  /** Room for the sample indices of one batch. */
  readonly indices: Uint32Array;
}

/** A zeroed mailbox for batches of up to maxRows rows. */
export function createMailbox(maxRows: number): Mailbox {
  return openMailbox(new SharedArrayBuffer(INDICES_OFFSET + 4 * maxRows));
}

export function openMailbox(buffer: SharedArrayBuffer): Mailbox {
  if (buffer.byteLength < INDICES_OFFSET) throw new RangeError(`a mailbox needs at least ${INDICES_OFFSET} bytes, got ${buffer.byteLength}`);
  return {
    buffer,
    words: new Int32Array(buffer, 0, WORDS),
    f64: new Float64Array(buffer, 0, F64_DONE + 1),
    text: new Uint8Array(buffer, TEXT_OFFSET, TEXT_BYTES),
    indices: new Uint32Array(buffer, INDICES_OFFSET, (buffer.byteLength - INDICES_OFFSET) >> 2),
  };
}

/** One order as the coordinator writes it. */
export interface MailboxOrder {
  taskId: number;
  version: number;
  step: number;
  k: number;
  rows: number;
  start: number;
  end: number;
  indices: ArrayLike<number>;
  region: number;
  fault?: FaultOrder;
}

/** Writes the order (or bumps ORDER_SEQ alone, when the fields are written) and wakes the thread; returns its sequence number (the DONE_SEQ to wait for). */
function post(mb: Mailbox): number {
  const w = mb.words;
  const seq = Atomics.load(w, W.ORDER_SEQ) + 1;
  mb.f64[F64_POSTED] = clock();
  Atomics.store(w, W.ORDER_SEQ, seq);
  Atomics.notify(w, W.ORDER_SEQ);
  return seq;
}

/** Orders the thread into the step loop (step-board.ts) as thread `lane` of `lanes`, from step sequence number firstSeq. */
export function postStepsOrder(mb: Mailbox, taskId: number, lane: number, lanes: number, firstSeq: number): number {
  const w = mb.words;
  w[W.KIND] = ORDER_STEPS;
  w[W.TASK_ID] = taskId;
  w[W.START] = lane;
  w[W.END] = lanes;
  w[W.STEP] = firstSeq;
  return post(mb);
}

/** Writes the order and wakes the thread; returns its sequence number (the DONE_SEQ to wait for). */
export function postOrder(mb: Mailbox, o: MailboxOrder): number {
  const w = mb.words;
  w[W.KIND] = ORDER_RANGE;
  if (o.indices.length > mb.indices.length) throw new RangeError(`${o.indices.length} indices, the mailbox holds ${mb.indices.length}`);
  w[W.TASK_ID] = o.taskId;
  w[W.VERSION] = o.version;
  w[W.STEP] = o.step;
  w[W.K] = o.k;
  w[W.ROWS] = o.rows;
  w[W.START] = o.start;
  w[W.END] = o.end;
  w[W.INDICES] = o.indices.length;
  mb.indices.set(o.indices);
  w[W.REGION] = o.region;
  w[W.FAULT_KIND] = o.fault === undefined ? 0 : 1 + FAULT_KINDS.indexOf(o.fault.kind);
  w[W.FAULT_MS] = o.fault?.ms ?? -1;
  w[W.FAULT_INDEX] = o.fault?.index ?? -1;
  return post(mb);
}

/** The order's fields as a plain object (region: its id), to be validated by the reader. */
export function readOrder(mb: Mailbox): Omit<MailboxOrder, 'indices'> & { indices: Uint32Array } {
  const w = mb.words;
  const kind = w[W.FAULT_KIND];
  const fault: FaultOrder | undefined = kind === 0 ? undefined : {
    kind: FAULT_KINDS[kind - 1],
    ...(w[W.FAULT_MS] >= 0 ? { ms: w[W.FAULT_MS] } : {}),
    ...(w[W.FAULT_INDEX] >= 0 ? { index: w[W.FAULT_INDEX] } : {}),
  };
  const n = w[W.INDICES];
  return {
    taskId: w[W.TASK_ID], version: w[W.VERSION], step: w[W.STEP], k: w[W.K], rows: w[W.ROWS],
    start: w[W.START], end: w[W.END], region: w[W.REGION],
    // A copy: the coordinator may write the next order while a late answer is still computing.
    indices: mb.indices.slice(0, Math.max(0, Math.min(n, mb.indices.length))),
    ...(fault === undefined ? {} : { fault }),
  };
}

/** The thread's answer, as it writes it. */
export type MailboxReply =
  | { type: 'result'; taskId: number; version: number; threadId: number; computeMs: number; blocks: readonly { level: number; index: number }[] | 'garbled' }
  | { type: 'stale'; taskId: number; version: number; threadId: number }
  | { type: 'error'; taskId: number; threadId: number; message: string }
  | { type: 'steps'; taskId: number; threadId: number; steps: number };

/** Writes the reply to order `seq` and wakes the coordinator. */
export function postReply(mb: Mailbox, seq: number, r: MailboxReply): void {
  const w = mb.words;
  w[W.R_TASK_ID] = r.taskId;
  w[W.R_THREAD_ID] = r.threadId;
  if (r.type === 'steps') {
    w[W.R_STATUS] = REPLY_STEPS;
    w[W.R_BLOCKS] = r.steps;
  } else if (r.type === 'error') {
    w[W.R_STATUS] = REPLY_ERROR;
    const { written } = new TextEncoder().encodeInto(r.message.slice(0, TEXT_BYTES), mb.text);
    w[W.R_TEXT] = written;
  } else {
    w[W.R_STATUS] = r.type === 'result' ? REPLY_RESULT : REPLY_STALE;
    w[W.R_VERSION] = r.version;
    if (r.type === 'result') {
      mb.f64[F64_COMPUTE_MS] = r.computeMs;
      if (r.blocks === 'garbled') {
        w[W.R_BLOCKS] = -1;
      } else {
        const n = Math.min(r.blocks.length, MAX_BLOCKS);
        w[W.R_BLOCKS] = n;
        for (let i = 0; i < n; i++) {
          w[W.R_NODES + 2 * i] = r.blocks[i].level;
          w[W.R_NODES + 2 * i + 1] = r.blocks[i].index;
        }
      }
    }
  }
  mb.f64[F64_DONE] = clock();
  Atomics.store(w, W.DONE_SEQ, seq);
  Atomics.notify(w, W.DONE_SEQ);
}

/** A clock both threads read alike (ms): each thread's performance.now() counts from its own start. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** The thread noticed the order just read (for handoff()). */
export function markSeen(mb: Mailbox): void {
  mb.f64[F64_SEEN] = clock();
}

/** When the last order was posted, seen by the thread and answered (clock() ms): where a step's hand-off time goes. */
export function handoff(mb: Mailbox): { posted: number; seen: number; done: number } {
  return { posted: mb.f64[F64_POSTED], seen: mb.f64[F64_SEEN], done: mb.f64[F64_DONE] };
}

/**
 * The reply's fields as a plain object, for the reader to validate: a
 * result, stale or error reply, or what the words say (a block count out of
 * range decodes to `blocks: null`, which the schema refuses).
 */
export function readReply(mb: Mailbox): Record<string, unknown> {
  const w = mb.words;
  const status = w[W.R_STATUS];
  const base = { taskId: w[W.R_TASK_ID], threadId: w[W.R_THREAD_ID] };
  if (status === REPLY_ERROR) {
    const n = Math.max(0, Math.min(w[W.R_TEXT], TEXT_BYTES));
    // TextDecoder refuses views of shared memory: copy the bytes out first.
    return { type: 'error', ...base, message: new TextDecoder().decode(mb.text.slice(0, n)) };
  }
  if (status === REPLY_STALE) return { type: 'stale', ...base, version: w[W.R_VERSION] };
  if (status === REPLY_STEPS) return { type: 'steps', ...base, steps: w[W.R_BLOCKS] };
  if (status !== REPLY_RESULT) return { type: `status ${status}`, ...base };
  const n = w[W.R_BLOCKS];
  let blocks: { level: number; index: number }[] | null = null;
  if (n >= 0 && n <= MAX_BLOCKS) {
    blocks = [];
    for (let i = 0; i < n; i++) blocks.push({ level: w[W.R_NODES + 2 * i], index: w[W.R_NODES + 2 * i + 1] });
  }
  return { type: 'result', ...base, version: w[W.R_VERSION], blocks, computeMs: mb.f64[F64_COMPUTE_MS] };
}
