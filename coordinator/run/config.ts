// The training config: one JSON file, checked by zod before anything runs.
// Every field is documented in docs/config.md; command-line
// options override the file's values.
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { ModelSpec } from '../../src/model/spec.js';
import { OptimizerConfig } from '../../src/optim/optimizer.js';
import { ScheduleConfig } from '../../src/optim/schedule.js';
import { LOSS_NAMES } from '../../src/losses/index.js';
import { parseJsonText } from '../../src/check/json-text.js';
import { formatZodError, plainIssueMessage } from '../../src/check/zod-format.js';
import { dptError } from '../../src/errors.js';
import { CsvDataSpec } from '../data/csv.js';
import { parseChaos } from '../../src/dispatch/chaos.js';
import { packageExampleFor } from './examples.js';

export const MnistDataSpec = z.strictObject({
  type: z.literal('mnist'),
  /** 'flat': 784 features; 'rows': a sequence of 28 rows of 28 pixels (for LSTM/GRU); 'image': one [1, 28, 28] channel (for conv2d). */
  view: z.enum(['flat', 'rows', 'image']).default('flat'),
  /** Use only the first N training samples (quick experiments and tests). */
  trainLimit: z.number().int().positive().optional(),
  /** Use only the first N test samples. */
  testLimit: z.number().int().positive().optional(),
});

export const DataSpec = z.discriminatedUnion('type', [MnistDataSpec, CsvDataSpec]);

export const wholeNonNeg = z.number({ error: 'expected a whole number' }).int({ error: 'expected a whole number' }).nonnegative({ error: 'expected a whole number >= 0' });
export const wholePos = z.number({ error: 'expected a positive whole number' }).int({ error: 'expected a positive whole number' }).positive({ error: 'expected a positive whole number' });

export const TrainConfig = z.strictObject({
  /** Free text: what this config is for. */
  description: z.string().optional(),
  /** Seeds initialization, shuffling and dropout: same config + seed = same bits. */
  seed: wholeNonNeg.default(1),
  data: DataSpec,
  model: ModelSpec,
  loss: z.enum(LOSS_NAMES),
  /** SGD (the default: `type` left out), Adam or AdamW (src/optim/optimizer.ts). */
  optimizer: OptimizerConfig,
  schedule: ScheduleConfig.default({ type: 'constant' }),
  /** Linear learning-rate warm-up over this many steps. */
  warmupSteps: wholeNonNeg.default(0),
  epochs: wholePos,
  /** Samples per global minibatch (the last batch of an epoch may be smaller). */
  batchSize: wholePos,
  /** K: micro-shards per minibatch, the unit of work and of reduction. Default min(batchSize, 16). */
  microShards: wholePos.optional(),
  /** Stop after this many steps (0: run all epochs). */
  maxSteps: wholeNonNeg.default(0),
  /** Rows per forward pass during evaluation. */
  evalBatchSize: wholePos.default(1000),
  /** Write a checkpoint every N steps (0: only at each epoch's end). */
  checkpointEvery: wholeNonNeg.default(0),
  /** Worker threads (0: compute in the coordinator's thread). Default: the machine's cores. `--workers` wins. */
  workers: wholeNonNeg.optional(),
  /** Reassign a worker's micro-shards when it has not answered within this many ms (0: never). `--step-timeout-ms` wins. */
  stepTimeoutMs: wholeNonNeg.default(30_000),
  /** Deterministic fault injection (see src/dispatch/chaos.ts and docs/one-machine.md); `--chaos` wins. */
  chaos: z.string().optional(),
  /**
   * How the gradient's partial sums travel and are rounded (issue 21): f32, or bf16, every node of the
   * reduction tree rounded to bfloat16 on its trainable part wherever it is formed (it changes the bits,
   * on every engine alike). `--grad-wire` wins.
   */
  gradWire: z.enum(['f32', 'bf16']).default('f32'),
  /** With network workers: auto (workers that advertise a peer address reduce among themselves), star or collective. `--topology` wins. */
  topology: z.enum(['auto', 'star', 'collective']).default('auto'),
  /** In the collective, compare the workers' replicas with the coordinator's every this many steps (0: never). */
  replicaCheckEvery: wholeNonNeg.default(100),
}).superRefine((c, ctx) => {
  if (c.microShards !== undefined && c.microShards > c.batchSize) {
    ctx.addIssue({ code: 'custom', path: ['microShards'], message: `must be at most batchSize (${c.batchSize}), got ${c.microShards}` });
  }
  if (c.chaos !== undefined) {
    try {
      parseChaos(c.chaos);
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['chaos'], message: (err as Error).message });
    }
  }
});

export type TrainConfig = z.infer<typeof TrainConfig>;
/** A config as written (fields with defaults may be left out). */
export type TrainConfigInput = z.input<typeof TrainConfig>;
export type DataSpec = z.infer<typeof DataSpec>;

export function microShardsOf(config: TrainConfig): number {
  return config.microShards ?? Math.min(config.batchSize, 16);
}

/** Validates a parsed JSON value; `where` names the file in messages. */
export function parseConfig(value: unknown, where: string): TrainConfig {
  const result = TrainConfig.safeParse(value, { error: plainIssueMessage });
  if (!result.success) throw dptError('DPT_ERR_CONFIG', `${where}: invalid config\n${formatZodError(result.error)}`);
  return result.data;
}

export function readConfigFile(file: string): TrainConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    // `examples/csv-blobs.json` from a project that installed the package: say where the package's copy is.
    const example = (err as NodeJS.ErrnoException).code === 'ENOENT' ? packageExampleFor(file) : null;
    const hint = example === null ? '' : `; the package's example is ${example}`;
    throw dptError('DPT_ERR_CONFIG', `${file}: cannot read the config file (${(err as Error).message})${hint}`);
  }
  let json: unknown;
  try {
    json = parseJsonText(text);
  } catch (err) {
    throw dptError('DPT_ERR_CONFIG', `${file}: not valid JSON: ${(err as Error).message}`);
  }
  return parseConfig(json, file);
}
