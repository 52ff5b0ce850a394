// The messages between the coordinator and its worker threads, shared by
// both sides (transport.ts and thread-entry.ts):
// one zod schema per message, the TypeScript types inferred at the bottom.
//
// What moves how (docs/design.md "Facts measured here": nothing is ever
// transferred, no ArrayBuffer is ever detached):
//   - the training set, the master weights and a control word live on
//     SharedArrayBuffers handed to every thread once, in Piscina's workerData
//     (ThreadSetup). Replacement threads get the same workerData.
//   - the weights are a versioned buffer: the coordinator alone writes them,
//     between steps, then bumps control[VERSION]; an order names the version
//     it was cut for, and a thread that finds another version answers
//     `stale` instead of computing on weights that are changing under it.
//   - Piscina runs two kinds of task: a WarmupTask per thread when the pool
//     starts, then one ServeTask per thread that runs for the life of the
//     thread: its serve loop takes orders from a mailbox in shared memory
//     (thread-mailbox.ts), so a step posts nothing.
//   - per order (StepTask, decoded from the mailbox): the range's sample
//     indices, the micro-shard range and the id of a result region (a
//     SharedArrayBuffer the coordinator owns and lends to one order at a
//     time, sent once over the serve loop's MessagePort) into which the
//     thread writes its aligned-subtree sums.
//   - per reply (TaskReply, decoded from the mailbox): which tree nodes were
//     written, in order; or `stale`; or the error the order raised.
// The thread validates every order, the coordinator every reply; a
// malformed reply is a failed order.
import { MessagePort } from 'node:worker_threads';
import * as z from 'zod';
import { formatZodError } from '../../src/check/zod-format.js';
import { dptError } from '../../src/errors.js';
import { LOSS_NAMES } from '../../src/losses/index.js';
import { isWasmModule, type WasmModule } from '../../src/tensor/wasm-kernels.js';
import { FaultOrder, refineRange } from '../../src/protocol/messages.js';

export const THREAD_PROTOCOL_VERSION = 2;

/** Index of the weights version in the control Int32Array. */
export const CONTROL_VERSION = 0;
/**
 * Orders being computed, over all threads (the coordinator adds one per
 * order sent, a thread takes one off when it has computed it): the thread
 * that takes the last one off does not spin, because the coordinator's turn
 * comes next and needs a core.
 */
export const CONTROL_BUSY = 1;
/** Length of the control Int32Array. */
export const CONTROL_LENGTH = 2;

const whole = z.number().int().nonnegative();
const positive = z.number().int().positive();
const sharedBuffer = z.custom<SharedArrayBuffer>((v) => v instanceof SharedArrayBuffer, { error: 'expected a SharedArrayBuffer' });

/** Piscina workerData: everything a thread needs once, before its first task. */
export const ThreadSetup = z.strictObject({
  protocol: z.literal(THREAD_PROTOCOL_VERSION),
  /** Key of the session (hash of model, loss and seed): a thread builds one model per session. */
  session: z.string().min(1),
  /** The model spec (checked again by buildModel). */
  model: z.unknown(),
  loss: z.enum(LOSS_NAMES),
  /** Seeds dropout masks (with step and row). */
  seed: whole,
  /** Largest global batch, in rows. */
  maxBatch: positive,
  /** --grad-wire: bf16 rounds every tree node the thread forms; absent: f32. */
  gradWire: z.enum(['f32', 'bf16']).optional(),
  /**
   * The training set on shared memory: x (n, xSize) and y (n, ySize)
   * float32; with `ownCopy`, each thread copies it once into its own memory
   * and gathers rows from there (see the coordinator's OWN_COPY_BYTES).
   */
  train: z.strictObject({
    x: sharedBuffer,
    y: sharedBuffer,
    n: positive,
    xSize: positive,
    ySize: positive,
    ownCopy: z.boolean(),
  }),
  /** The master weights, float32, read-only for threads. */
  params: sharedBuffer,
  /** Int32 control words (CONTROL_VERSION: weights version; CONTROL_BUSY: orders being computed). */
  control: sharedBuffer,
  /**
   * The kernels to compute with, the coordinator's: every worker of a run
   * must use the same (the wasm LSTM/GRU cells differ from the TypeScript
   * ones in the last bits). The WebAssembly.Module is compiled once by the
   * coordinator and shared with the threads, not copied.
   */
  kernels: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('wasm'), module: z.custom<WasmModule>(isWasmModule, { error: 'expected a compiled WebAssembly.Module' }) }),
    z.strictObject({ kind: z.literal('ts') }),
  ]),
});

/** One order: compute the aligned-block sums of micro-shards [start, end) of one global batch. */
export const StepTask = z.strictObject({
  /** Unique per dispatch; the reply echoes it. */
  taskId: whole,
  /** Weights version this task is cut for (control[CONTROL_VERSION]). */
  version: whole,
  /** 0-based step (keys dropout masks). */
  step: whole,
  /** Micro-shards and rows of the whole batch, and the range. */
  k: positive,
  rows: positive,
  start: whole,
  end: positive,
  /** Sample indices of the range's rows only. */
  indices: z.instanceof(Uint32Array),
  /** Id of the result region to write the block sums into: block i at float offset i * (model size + 2). */
  region: whole,
  fault: FaultOrder.optional(),
}).superRefine((t, ctx) => {
  refineRange(t, ctx);
});

/**
 * Sent once per thread when the pool starts: build the session's model, then
 * wait at the barrier until every thread has arrived (so each thread takes
 * exactly one, and thread start-up never counts against the step timeout).
 */
export const WarmupTask = z.strictObject({
  type: z.literal('warmup'),
  protocol: z.literal(THREAD_PROTOCOL_VERSION),
  session: z.string().min(1),
  /** Int32Array(1): threads arrived so far. */
  barrier: sharedBuffer,
  threads: positive,
  /** Give up waiting for the others after this long. */
  timeoutMs: positive,
});

/**
 * Runs for the life of the thread: take orders from the mailbox until its
 * STOP word is set. A thread that dies ends its serve task; the transport
 * starts a new one (with a new mailbox and port) on Piscina's replacement.
 */
export const ServeTask = z.strictObject({
  type: z.literal('serve'),
  protocol: z.literal(THREAD_PROTOCOL_VERSION),
  session: z.string().min(1),
  /** The lane's mailbox (thread-mailbox.ts). */
  mailbox: sharedBuffer,
  /** The transport's step board (step-board.ts), for the step loop. */
  board: sharedBuffer,
  /** Result regions arrive here ({ id, buffer }) before the first order that names them. */
  port: z.custom<MessagePort>((v) => v instanceof MessagePort, { error: 'expected a MessagePort' }),
  /**
   * How long to spin on the mailbox after an answer before sleeping: a
   * sleeping thread takes 0.2-0.4 ms to run again here, more than the
   * coordinator's turn between two steps.
   */
  spinUs: z.number().nonnegative(),
});

/** A region for the serve loop's map, sent on its port. */
export const RegionMessage = z.strictObject({ id: whole, buffer: sharedBuffer });

/** What a serve task returns when it is stopped. */
export const ServedReply = z.strictObject({ type: z.literal('served'), orders: whole });

export const ReadyReply = z.strictObject({
  type: z.literal('ready'),
  threadId: whole,
  /** Whether every thread arrived at the barrier in time. */
  complete: z.boolean(),
});

const TreeNodeRef = z.strictObject({ level: whole, index: whole });

export const ResultReply = z.strictObject({
  type: z.literal('result'),
  taskId: whole,
  version: whole,
  /** The nodes written into the region, left to right (alignedBlocks of the range). */
  blocks: z.array(TreeNodeRef).min(1),
  /** Milliseconds spent computing (for the stall inspector and speed estimates). */
  computeMs: z.number().nonnegative(),
  threadId: whole,
});

/** The weights changed under the task (it was late): nothing written that matters. */
export const StaleReply = z.strictObject({
  type: z.literal('stale'),
  taskId: whole,
  version: whole,
  threadId: whole,
});

/** The order could not be computed (it threw): the message says why. */
export const ErrorReply = z.strictObject({
  type: z.literal('error'),
  taskId: whole,
  threadId: whole,
  message: z.string(),
});

/** The thread left the step loop (worker/step-board.ts) after applying `steps` steps. */
export const StepsReply = z.strictObject({
  type: z.literal('steps'),
  taskId: whole,
  threadId: whole,
  steps: whole,
});

export const TaskReply = z.discriminatedUnion('type', [ResultReply, StaleReply, ErrorReply, StepsReply]);

export type ThreadSetup = z.infer<typeof ThreadSetup>;
export type StepTask = z.infer<typeof StepTask>;
export type TaskReply = z.infer<typeof TaskReply>;
export type WarmupTask = z.infer<typeof WarmupTask>;
export type ReadyReply = z.infer<typeof ReadyReply>;
export type ResultReply = z.infer<typeof ResultReply>;
export type ServeTask = z.infer<typeof ServeTask>;
export type ServedReply = z.infer<typeof ServedReply>;

/** A decoded thread message, or what is wrong with it (one line per bad field). */
export type Decoded<T> = { ok: true; value: T } | { ok: false; problems: string };

/**
 * The one decode of the thread transport: every message that crosses to or
 * from a thread is parsed here against its schema.
 */
export function decodeThreadMessage<S extends z.ZodType>(schema: S, raw: unknown): Decoded<z.infer<S>> {
  const parsed = schema.safeParse(raw);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problems: formatZodError(parsed.error) };
}

/** decodeThreadMessage on the thread's side, where an invalid message ends the task: DPT_ERR_MESSAGE naming it and its fields. */
export function expectThreadMessage<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  const decoded = decodeThreadMessage(schema, raw);
  if (!decoded.ok) throw dptError('DPT_ERR_MESSAGE', `worker thread: invalid ${what}\n${decoded.problems}`);
  return decoded.value;
}

/** A reply the coordinator cannot use, as its logs and failures say it: `malformed <what>: field: cause; ...`. */
export function malformed(what: string, problems: string): string {
  return `malformed ${what}: ${problems.replace(/\n/g, '; ')}`;
}
