// The field types every protocol schema is built from (messages.ts, the
// worker protocol; collective-messages.ts, the collective's): one
// definition each, so a cap or a format changes in one place.
import * as z from 'zod';
import { FAULT_KINDS } from './faults.js';

export const whole = z.number().int().nonnegative().max(2 ** 31 - 1);
export const positive = whole.min(1);
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a SHA-256 hex digest' });
export const text = (max: number) => z.string().max(max);
export const floats = z.custom<Float32Array>((v) => v instanceof Float32Array, { error: 'expected a float32 payload' });
/** A node of the reduction tree (src/reduce/tree.ts). */
export const TreeNodeRef = z.strictObject({ level: whole.max(64), index: whole });
/** At most this many rows in one global batch (and so in one task). */
export const MAX_BATCH_ROWS = 1 << 20;
/** At most this many micro-shards per batch; a range has at most 2 log2 K aligned blocks. */
export const MAX_MICRO_SHARDS = 1 << 16;

/** A fault a worker must carry out (`--chaos`, see src/dispatch/chaos.ts): tests and demonstrations only. */
export const FaultOrder = z.strictObject({
  kind: z.enum(FAULT_KINDS),
  ms: whole.optional(),
  index: whole.optional(),
});
