// Every message between a coordinator and a worker (a Node process over a
// WebSocket, a browser tab), one zod schema each; the TypeScript types are
// inferred from them. docs/PROTOCOL.md describes the conversation; codec.ts
// turns messages into frames and back, and its decode() is the one place a
// received frame becomes a typed message.
//
//   worker                                  coordinator
//   hello {protocol, token, kernels, ...} ─▶
//                                         ◀─ welcome {session, dataset, ...} | refuse {code, reason}
//   (fetches the dataset by hash, builds the model)
//   ready {configHash, datasetHash}       ─▶
//                                         ◀─ weights {version} + params   (when the worker lacks them)
//                                         ◀─ task {step, version, range, indices}
//   result {blocks} + sums                ─▶  (or failed {reason})
//   heartbeat {tasksDone, ...}            ─▶  (every heartbeatMs; liveness itself is ws ping/pong)
//                                         ◀─ alive {}  (every heartbeatMs: what a tab, which sees no pings, hears)
//   bye {code, reason}                    ◀─▶
//
// Two messages carry one large float32 buffer (weights.params, result.sums).
// The codec sends it as raw aligned bytes after the msgpack header, never
// inside it (PAYLOAD_FIELD below), so it is neither framed per tensor nor
// copied by the msgpack decoder.
import * as z from 'zod';
import { LOSS_NAMES } from '../losses/index.js';
import { shardBounds } from '../data/microshard.js';
import { COLLECTIVE_SCHEMAS } from './collective-messages.js';
import { FaultOrder, floats, MAX_BATCH_ROWS, MAX_MICRO_SHARDS, positive, sha256, text, TreeNodeRef, whole } from './fields.js';

export { FaultOrder, MAX_BATCH_ROWS, MAX_MICRO_SHARDS, TreeNodeRef };

/** Bumped on any incompatible change of a message below. */
export const PROTOCOL_VERSION = 2;

export const KernelName = z.enum(['wasm', 'ts']);
export const WorkerKind = z.enum(['thread', 'process', 'tab']);


export const Hello = z.strictObject({
  type: z.literal('hello'),
  /** The worker's PROTOCOL_VERSION (any number: a mismatch is refused with a reason, not a schema error). */
  protocol: whole,
  /** The shared secret ('' when the worker has none); compared in constant time, never logged. */
  token: text(1024),
  kind: WorkerKind.exclude(['thread']),
  /** The kernels it computes with: the run's must match (recurrent layers differ in the last bits). */
  kernels: KernelName,
  /** Threads it computes on (it reduces its range across them itself). */
  threads: positive.max(1024),
  /** Host name (process) or browser summary (tab), for logs and the dashboard. */
  host: text(256),
  /** Optional name chosen by the operator. */
  name: text(128).optional(),
  /** Software and runtime, e.g. "dptrain 0.1.0, node v20.20.2". */
  software: text(256),
  /** A process that can join the collective (issue 21): the host:port its peers reach it at (`--peer-listen`, `--advertise`). */
  peer: z.strictObject({ address: text(300).regex(/^[^\s/]+:\d{1,5}$/, { error: 'expected HOST:PORT' }) }).optional(),
});

/** What a worker needs to compute: the parts of the config that change its bits. */
export const Session = z.strictObject({
  /** The model spec (validated again by buildModel on the worker). */
  model: z.unknown(),
  loss: z.enum(LOSS_NAMES),
  /** Seeds dropout masks (with step and row). */
  seed: whole,
  /** Rows in the largest global batch (sizes the worker's buffers). */
  maxBatch: positive.max(MAX_BATCH_ROWS),
  /** --grad-wire: bf16 rounds every tree node a worker forms (src/reduce/bf16.ts); absent: f32. */
  gradWire: z.enum(['f32', 'bf16']).optional(),
});

export const DatasetRef = z.strictObject({
  /** SHA-256 of the dataset blob (src/data/binary.ts): its identity. */
  hash: sha256,
  bytes: whole.max(2 ** 53 - 1),
  /** Where to GET it on the coordinator's port, e.g. /data/<hash>. */
  path: z.string().regex(/^\/[A-Za-z0-9/_.-]*$/).max(256),
});

export const Welcome = z.strictObject({
  type: z.literal('welcome'),
  protocol: whole,
  /** The coordinator's name for this worker, in its logs and summary. */
  workerId: text(64).min(1),
  /** Random per coordinator start: a worker that reconnects can tell a restarted coordinator. */
  runId: text(64).min(1),
  kernels: KernelName,
  session: Session,
  /** hashJson(session): the worker checks it and echoes it in ready. */
  configHash: sha256,
  dataset: DatasetRef,
  /** The worker sends a heartbeat this often. */
  heartbeatMs: positive,
});

/** Why a coordinator refuses a worker; see docs/PROTOCOL.md. */
export const REFUSAL_CODES = [
  'protocol', 'token', 'kernels', 'config', 'dataset', 'message', 'quarantined', 'full', 'finished', 'shutdown',
] as const;

export const Refuse = z.strictObject({
  type: z.literal('refuse'),
  code: z.enum(REFUSAL_CODES),
  reason: text(1024),
  /** Whether trying again later may succeed (a restart, a free slot). */
  retry: z.boolean(),
});

export const Ready = z.strictObject({
  type: z.literal('ready'),
  /** The worker's own hashJson of the session it received. */
  configHash: sha256,
  /** The worker's own SHA-256 of the dataset blob it holds. */
  datasetHash: sha256,
});

export const Weights = z.strictObject({
  type: z.literal('weights'),
  version: whole,
  /** 0-based step these weights start. */
  step: whole,
  /** The flat parameter buffer (payload). */
  params: floats,
});

/**
 * The checks every range order needs beyond its fields' own: at most one
 * micro-shard per row, and [start, end) inside [0, k). Returns whether the
 * range is well formed (shared with the thread transport's StepTask).
 */
export function refineRange(t: { k: number; rows: number; start: number; end: number }, ctx: z.RefinementCtx): boolean {
  let ok = true;
  if (t.k > t.rows) {
    ctx.addIssue({ code: 'custom', path: ['k'], message: `${t.k} micro-shards for ${t.rows} rows` });
    ok = false;
  }
  if (!(t.start < t.end && t.end <= t.k)) {
    ctx.addIssue({ code: 'custom', path: ['end'], message: `range [${t.start}, ${t.end}) is not inside [0, ${t.k})` });
    ok = false;
  }
  return ok;
}

/** Compute the aligned-block sums of micro-shards [start, end) of one global batch. */
export const Task = z.strictObject({
  type: z.literal('task'),
  /** Unique per dispatch; the answer names it. */
  taskId: whole,
  /** 0-based step (keys dropout masks). */
  step: whole,
  /** The weights version to compute with (sent before in a weights message). */
  version: whole,
  /** Micro-shards of this batch, and rows in the whole batch. */
  k: positive.max(MAX_MICRO_SHARDS),
  rows: positive.max(MAX_BATCH_ROWS),
  start: whole,
  end: positive,
  /** Sample indices of the range's rows only: rows shardBounds(rows, k, start)[0] .. shardBounds(rows, k, end - 1)[1]. */
  indices: z.array(whole).max(MAX_BATCH_ROWS),
  fault: FaultOrder.optional(),
}).superRefine((t, ctx) => {
  if (!refineRange(t, ctx)) return;
  const want = shardBounds(t.rows, t.k, t.end - 1)[1] - shardBounds(t.rows, t.k, t.start)[0];
  if (t.indices.length !== want) {
    ctx.addIssue({ code: 'custom', path: ['indices'], message: `${t.indices.length} indices, the range's rows are ${want}` });
  }
});


export const Result = z.strictObject({
  type: z.literal('result'),
  taskId: whole,
  version: whole,
  /** The tree nodes whose sums follow, left to right (the aligned blocks of the range). */
  blocks: z.array(TreeNodeRef).min(1).max(64),
  /** Time spent computing, for speed estimates. */
  computeMs: z.number().nonnegative().max(1e9),
  /** blocks.length gradient vectors (payload). */
  sums: floats,
});

export const Failed = z.strictObject({
  type: z.literal('failed'),
  taskId: whole,
  reason: text(1024),
});

export const Heartbeat = z.strictObject({
  type: z.literal('heartbeat'),
  /** Tasks answered since the worker connected. */
  tasksDone: whole,
  /** Whether it is computing now. */
  busy: z.boolean(),
});

/**
 * The coordinator is there (every heartbeatMs, to every welcomed worker):
 * a browser's WebSocket answers pings without telling the page, so a tab
 * hears a silent coordinator only by the absence of these.
 */
export const Alive = z.strictObject({
  type: z.literal('alive'),
});

export const BYE_CODES = ['finished', 'leaving', 'shutdown', 'kicked'] as const;

export const Bye = z.strictObject({
  type: z.literal('bye'),
  code: z.enum(BYE_CODES),
  reason: text(1024),
});

export const Message = z.discriminatedUnion('type', [
  Hello, Welcome, Refuse, Ready, Weights, Task, Result, Failed, Heartbeat, Alive, Bye, ...COLLECTIVE_SCHEMAS,
]);

export type Hello = z.infer<typeof Hello>;
export type Session = z.infer<typeof Session>;
export type DatasetRef = z.infer<typeof DatasetRef>;
export type Welcome = z.infer<typeof Welcome>;
export type Refuse = z.infer<typeof Refuse>;
export type RefusalCode = Refuse['code'];
export type Ready = z.infer<typeof Ready>;
export type Weights = z.infer<typeof Weights>;
export type Task = z.infer<typeof Task>;
export type Result = z.infer<typeof Result>;
export type Failed = z.infer<typeof Failed>;
export type Heartbeat = z.infer<typeof Heartbeat>;
export type Alive = z.infer<typeof Alive>;
export type Bye = z.infer<typeof Bye>;
export type ByeCode = Bye['code'];
export type FaultOrder = z.infer<typeof FaultOrder>;
export type Message = z.infer<typeof Message>;
export type MessageType = Message['type'];
export type KernelName = z.infer<typeof KernelName>;
export type WorkerKind = z.infer<typeof WorkerKind>;

/** Who may send which message. */
export const SENT_BY = {
  worker: ['hello', 'ready', 'result', 'failed', 'heartbeat', 'bye'],
  coordinator: ['welcome', 'refuse', 'weights', 'task', 'alive', 'bye'],
  /**
   * The collective (collective-messages.ts): a worker admitted as a member
   * (it advertised a peer address) may send more on its connection than a
   * worker, and the coordinator sends it more; a member's peers over a peer
   * link send only these. The connection decodes as `member`/`conductor`
   * once the worker is a member, so a star worker's collective message is
   * refused like any other stray type. The coordinator sends parts too: of
   * the blocks its star workers (threads, tabs) computed.
   */
  member: ['hello', 'ready', 'result', 'failed', 'heartbeat', 'bye', 'computed', 'reduced', 'peer-fault', 'need', 'replica-hash'],
  conductor: ['welcome', 'refuse', 'weights', 'task', 'alive', 'bye', 'replica', 'order', 'commit', 'reduced', 'part'],
  peer: ['peer-hello', 'peer-welcome', 'refuse', 'part', 'reduced', 'bye'],
} as const satisfies Record<'worker' | 'coordinator' | 'member' | 'conductor' | 'peer', readonly MessageType[]>;

export type Sender = keyof typeof SENT_BY;
export type WorkerMessage = Extract<Message, { type: (typeof SENT_BY.worker)[number] }>;
export type CoordinatorMessage = Extract<Message, { type: (typeof SENT_BY.coordinator)[number] }>;
export type PeerMessage = Extract<Message, { type: (typeof SENT_BY.peer)[number] }>;
export type MemberMessage = Extract<Message, { type: (typeof SENT_BY.member)[number] }>;
export type ConductorMessage = Extract<Message, { type: (typeof SENT_BY.conductor)[number] }>;

/** The field of a message type that travels as the raw float32 payload. */
export const PAYLOAD_FIELD: Partial<Record<MessageType, 'params' | 'sums' | 'sum' | 'state'>> = {
  weights: 'params',
  result: 'sums',
  part: 'sums',
  reduced: 'sums',
  commit: 'sum',
  replica: 'state',
};

/** Types whose payload may be packed (bf16 heads: packed.ts), as their header's `pack` says. */
export const PACKED_TYPES: ReadonlySet<MessageType> = new Set(['part', 'reduced', 'commit']);
