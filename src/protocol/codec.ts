// Frames: how a message travels as one binary WebSocket message.
//
//   offset 0   4 bytes  H = byte length of the header (uint32, little-endian)
//   offset 4   H bytes  the message without its payload field, msgpack
//              zeros    up to P = align4(4 + H)
//   offset P   rest     the payload: float32 little-endian (weights.params,
//                       result.sums), absent for the other messages; for the
//                       collective's part, reduced and commit, packed as their
//                       header's `pack` says (packed.ts: bf16 heads, float32
//                       tails; plain float32 when half is 0)
//
// The float payload is raw bytes at a 4-aligned offset, so the receiver
// views it as a Float32Array in place whenever the frame itself is aligned
// (docs/design.md: msgpackr would decode a typed array as an unaligned Buffer, or
// copy it). decode() is the ONE choke point: every received frame goes
// through it, and it returns a message that passed its zod schema, or throws
// DPT_ERR_MESSAGE naming what is wrong (the field, the size, the sender).
import { Packr, Unpackr } from 'msgpackr';
import { dptError } from '../errors.js';
import { formatZodError } from '../check/zod-format.js';
import {
  Message, PACKED_TYPES, PAYLOAD_FIELD, SENT_BY,
  type CoordinatorMessage, type MessageType, type PeerMessage, type Sender, type WorkerMessage,
} from './messages.js';
import { Pack } from './collective-messages.js';
import { packedBytes, packFloats, unpackFloats } from './packed.js';

/** Headers above this size are refused before they are parsed (a task for a batch of 2^20 rows stays below). */
export const MAX_HEADER_BYTES = 8 << 20;

/** Per-frame caps for one connection; payload caps follow from the model's size. */
export interface FrameLimits {
  /** Largest frame accepted at all (the transport should refuse larger ones before buffering them). */
  maxFrameBytes: number;
  /** Largest float payload per message type, in floats (absent: no payload allowed beyond maxFrameBytes). */
  maxPayloadFloats?: Partial<Record<MessageType, number>>;
}

/** What a worker accepts from its coordinator: generous, it is trusted more than workers are (weights of up to 256 MiB). */
export const FROM_COORDINATOR_LIMITS: FrameLimits = { maxFrameBytes: 512 << 20 };

// Records (msgpackr's structure cache) would make frames depend on earlier
// frames; every frame stands alone.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, moreTypes: false, bundleStrings: false });

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** The frame of one message. The payload's bytes are copied into it, so the caller may change its buffer afterwards. */
export function encode(message: Message): Uint8Array {
  const field = PAYLOAD_FIELD[message.type];
  let payload: Float32Array | null = null;
  let header: Record<string, unknown> = message;
  if (field !== undefined) {
    const { [field]: floats, ...rest } = message as unknown as Record<string, unknown>;
    payload = floats as Float32Array;
    header = rest;
  }
  const head = packr.pack(header);
  const at = align4(4 + head.length);
  const pack = (message as { pack?: Pack }).pack;
  const payloadBytes = payload === null ? 0 : pack !== undefined ? packedBytes(pack) : payload.length * 4;
  const frame = new Uint8Array(at + payloadBytes);
  new DataView(frame.buffer).setUint32(0, head.length, true);
  frame.set(head, 4);
  if (payload !== null) {
    if (!LITTLE_ENDIAN_HOST) throw new Error('dptrain frames need a little-endian host');
    if (pack !== undefined) packFloats(payload, pack, frame.subarray(at));
    else frame.set(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), at);
  }
  return frame;
}

function fail(from: Sender, what: string): never {
  throw dptError('DPT_ERR_MESSAGE', `message from the ${from}: ${what}`);
}

/** The payload as floats: a view in place when aligned, else a copy. */
function floatsAt(frame: Uint8Array, at: number, count: number): Float32Array {
  const start = frame.byteOffset + at;
  if (start % 4 === 0) return new Float32Array(frame.buffer, start, count);
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(frame.subarray(at, at + count * 4));
  return out;
}

/** bytes [at, at + n) of the frame, at a 4-aligned offset of their buffer (copied when the frame is not). */
function alignedBytes(frame: Uint8Array, at: number, n: number): Uint8Array {
  if ((frame.byteOffset + at) % 4 === 0) return frame.subarray(at, at + n);
  return frame.slice(at, at + n);
}

function decodeAny(frame: Uint8Array, from: Sender, limits: FrameLimits): Message {
  if (!(frame instanceof Uint8Array)) fail(from, 'not a binary frame');
  if (frame.length > limits.maxFrameBytes) fail(from, `frame of ${frame.length} bytes exceeds the limit of ${limits.maxFrameBytes}`);
  if (frame.length < 4) fail(from, `frame of ${frame.length} bytes is shorter than its 4-byte header length`);
  const headLength = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(0, true);
  if (headLength > MAX_HEADER_BYTES) fail(from, `header length ${headLength} exceeds the limit of ${MAX_HEADER_BYTES} bytes`);
  if (4 + headLength > frame.length) fail(from, `truncated: the header is ${headLength} bytes but only ${frame.length - 4} follow`);
  let header: unknown;
  try {
    header = unpackr.unpack(frame.subarray(4, 4 + headLength));
  } catch (err) {
    fail(from, `header is not valid msgpack (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail(from, 'header is not a map');
  const fields = header as Record<string, unknown>;
  const type = fields.type;
  if (typeof type !== 'string' || !(type in MESSAGE_SCHEMAS)) {
    fail(from, `unknown message type ${JSON.stringify(typeof type === 'string' ? type.slice(0, 40) : type)}`);
  }
  const t = type as MessageType;
  if (!(SENT_BY[from] as readonly string[]).includes(t)) fail(from, `a ${from} does not send "${t}" messages`);

  const at = align4(4 + headLength);
  const payloadBytes = frame.length > 4 + headLength ? frame.length - at : 0;
  if (payloadBytes < 0) fail(from, `${t}: ${frame.length - 4 - headLength} stray bytes after the header`);
  const field = PAYLOAD_FIELD[t];
  if (field === undefined) {
    if (payloadBytes !== 0) fail(from, `${t}: ${payloadBytes} payload bytes, but "${t}" carries no payload`);
  } else {
    if (field in fields) fail(from, `${t}.${field}: must travel as the payload, not in the header`);
    const cap = limits.maxPayloadFloats?.[t];
    if (PACKED_TYPES.has(t) && fields.pack !== undefined) {
      const pack = Pack.safeParse(fields.pack);
      if (!pack.success) fail(from, `${t}.pack: ${formatZodError(pack.error).replace(/\n/g, '; ')}`);
      const count = pack.data.vectors * pack.data.length;
      if (cap !== undefined && count > cap) fail(from, `${t}.${field}: ${count} floats exceed the limit of ${cap}`);
      const want = packedBytes(pack.data);
      if (payloadBytes !== want) fail(from, `${t}.${field}: payload of ${payloadBytes} bytes, the pack (${pack.data.vectors} x ${pack.data.length}, ${pack.data.half} in bf16) needs ${want}`);
      fields[field] = unpackFloats(alignedBytes(frame, at, want), pack.data);
    } else {
      if (payloadBytes % 4 !== 0) fail(from, `${t}.${field}: payload of ${payloadBytes} bytes is not a whole number of float32s`);
      const count = payloadBytes / 4;
      if (cap !== undefined && count > cap) fail(from, `${t}.${field}: ${count} floats exceed the limit of ${cap}`);
      fields[field] = floatsAt(frame, at, count);
    }
  }
  const parsed = MESSAGE_SCHEMAS[t].safeParse(fields);
  if (!parsed.success) fail(from, `${t}: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`);
  return parsed.data as Message;
}

const MESSAGE_SCHEMAS = Object.fromEntries(
  Message.options.map((schema) => [schema.shape.type.value, schema]),
) as unknown as Record<MessageType, { safeParse(v: unknown): { success: true; data: unknown } | { success: false; error: import('zod').ZodError } }>;

/**
 * A frame received by the coordinator: a worker's message, validated, or
 * DPT_ERR_MESSAGE naming the field that is wrong.
 */
export function decodeFromWorker(frame: Uint8Array, limits: FrameLimits): WorkerMessage {
  return decodeAny(frame, 'worker', limits) as WorkerMessage;
}

/** A frame received by a worker: the coordinator's message, validated. */
export function decodeFromCoordinator(frame: Uint8Array, limits: FrameLimits): CoordinatorMessage {
  return decodeAny(frame, 'coordinator', limits) as CoordinatorMessage;
}

/** A frame received over a peer link of the collective: a peer's message, validated. */
export function decodeFromPeer(frame: Uint8Array, limits: FrameLimits): PeerMessage {
  return decodeAny(frame, 'peer', limits) as PeerMessage;
}

/** decode() for any side: `from` is who sent the frame. */
export function decode(frame: Uint8Array, from: Sender, limits: FrameLimits): Message {
  return decodeAny(frame, from, limits);
}
