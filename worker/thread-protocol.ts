// The messages between the coordinator and its worker threads, shared by
// both sides (coordinator/transports/threads.ts and worker/thread-worker.ts):
// one zod schema per message, the TypeScript types inferred at the bottom.
//
// What moves how (DESIGN.md "Facts measured here": nothing is ever
// transferred, no ArrayBuffer is ever detached):
//   - the training set, the master weights and a control word live on
//     SharedArrayBuffers handed to every thread once, in Piscina's workerData
//     (ThreadSetup). Replacement threads get the same workerData.
//   - the weights are a versioned buffer: the coordinator alone writes them,
//     between steps, then bumps control[VERSION]; a task names the version
//     it was cut for, and a thread that finds another version answers
//     `stale` instead of computing on weights that are changing under it.
//   - per task (StepTask, structured clone, ~1 KB): the range's
//     sample indices, the micro-shard range and a result region (a
//     SharedArrayBuffer the coordinator owns and hands to one task at a
//     time) into which the thread writes its aligned-subtree sums.
//   - per reply (TaskReply): which tree nodes were written, in order.
// The coordinator validates every reply; a malformed one is a failed task.
import { z } from 'zod';
import { LOSS_NAMES } from '../src/losses/index.js';
import { isWasmModule, type WasmModule } from '../src/tensor/wasm-kernels.js';
import { FaultOrder } from '../src/protocol/messages.js';

export const THREAD_PROTOCOL_VERSION = 1;

/** Index of the weights version in the control Int32Array. */
export const CONTROL_VERSION = 0;
/** Length of the control Int32Array. */
export const CONTROL_LENGTH = 1;

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
  /** The training set on shared memory: x (n, xSize) and y (n, ySize) float32. */
  train: z.strictObject({
    x: sharedBuffer,
    y: sharedBuffer,
    n: positive,
    xSize: positive,
    ySize: positive,
  }),
  /** The master weights, float32, read-only for threads. */
  params: sharedBuffer,
  /** Int32 control words (CONTROL_VERSION: weights version). */
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

/** One task: compute the aligned-block sums of micro-shards [start, end) of one global batch. */
export const StepTask = z.strictObject({
  type: z.literal('step'),
  protocol: z.literal(THREAD_PROTOCOL_VERSION),
  session: z.string().min(1),
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
  /** Where to write the block sums: block i at float offset i * (model size + 2). */
  region: sharedBuffer,
  fault: FaultOrder.optional(),
}).superRefine((t, ctx) => {
  if (t.k > t.rows) ctx.addIssue({ code: 'custom', path: ['k'], message: `${t.k} micro-shards for ${t.rows} rows` });
  if (!(t.start < t.end && t.end <= t.k)) ctx.addIssue({ code: 'custom', path: ['end'], message: `range [${t.start}, ${t.end}) is not inside [0, ${t.k})` });
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

export const TaskReply = z.discriminatedUnion('type', [ResultReply, StaleReply]);

export type ThreadSetup = z.infer<typeof ThreadSetup>;
export type StepTask = z.infer<typeof StepTask>;
export type TaskReply = z.infer<typeof TaskReply>;
export type WarmupTask = z.infer<typeof WarmupTask>;
export type ReadyReply = z.infer<typeof ReadyReply>;
export type ResultReply = z.infer<typeof ResultReply>;
