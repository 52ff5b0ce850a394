// Checkpoints: everything needed to resume bit-exactly (docs/design.md principle
// 7): the config (by hash and in full), the step, the flat weights with their
// statistics, the optimizer's state (SGD's velocity, Adam's moments and
// update count) and the metrics history. Written
// atomically (output-paths.ts: a temporary file, fsync, then rename over the
// old one), so a SIGKILL at any moment leaves either the old or the new
// checkpoint.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pack, unpack } from 'msgpackr';
import * as z from 'zod';
import { dptError } from '../../src/errors.js';
import { formatZodError } from '../../src/check/zod-format.js';
import { hashJson } from '../../src/protocol/content-hash.js';
import { writeOutputFile } from './output-paths.js';

export const CHECKPOINT_FILE = 'checkpoint.msgpack';

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { error: 'expected bytes' });

const CheckpointSchema = z.strictObject({
  format: z.literal('dptrain-checkpoint'),
  version: z.literal(1),
  /** SHA-256 of the canonical JSON of the resolved config (less the run-length fields). */
  configHash: z.string(),
  config: z.unknown(),
  /** Steps completed. */
  step: z.number().int().nonnegative(),
  params: z.custom<Uint8Array>((v) => v instanceof Uint8Array, { error: 'expected bytes' }),
  /** SGD's velocity (empty without momentum, and for Adam). */
  velocity: bytes,
  /** Adam's first and second moments (absent for SGD). */
  m: bytes.optional(),
  v: bytes.optional(),
  /** Optimizer updates applied (Adam's bias correction counts them; absent: as many as steps). */
  optimizerStep: z.number().int().nonnegative().optional(),
  /** Training-loss sum and count of the epoch in progress, and samples seen. */
  epochLossSum: z.number(),
  epochLossCount: z.number().int().nonnegative(),
  trainSeconds: z.number().nonnegative(),
  /**
   * The kernels the run computed with ('wasm-simd' or 'typescript'; absent in
   * older checkpoints): recurrent layers give other bits with the other kind,
   * so a resume must use the same.
   */
  kernels: z.string().optional(),
});
export type Checkpoint = z.infer<typeof CheckpointSchema>;

/** SHA-256 of the canonical JSON of a config: equal configs hash equal. */
export function hashConfig(config: object): string {
  return hashJson(config);
}

export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

export function floatsOf(b: Uint8Array): Float32Array {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
}

export function writeCheckpoint(dir: string, cp: Checkpoint): void {
  writeOutputFile(join(dir, CHECKPOINT_FILE), pack(cp), 'the checkpoint');
}

export function readCheckpoint(dir: string): Checkpoint {
  const file = join(dir, CHECKPOINT_FILE);
  if (!existsSync(file)) throw dptError('DPT_ERR_CHECKPOINT', `${dir}: no checkpoint here (expected ${CHECKPOINT_FILE}); pass the --out folder of an earlier run`);
  let raw: unknown;
  try {
    raw = unpack(readFileSync(file));
  } catch (err) {
    throw dptError('DPT_ERR_CHECKPOINT', `${file}: not a readable checkpoint (${(err as Error).message})`);
  }
  const parsed = CheckpointSchema.safeParse(raw);
  if (!parsed.success) throw dptError('DPT_ERR_CHECKPOINT', `${file}: invalid checkpoint\n${formatZodError(parsed.error)}`);
  return parsed.data;
}
