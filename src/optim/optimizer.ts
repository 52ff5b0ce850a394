// The optimizers behind one config and one update function: SGD (sgd.ts,
// the default when `type` is left out, so every config written before Adam
// keeps its meaning and its bits), Adam and AdamW (adam.ts).
//
// The update is a pure function of a parameter slice [from, to) and flat
// state arrays indexed like the parameters (SGD's velocity, Adam's m and
// v) plus the number of updates applied so far: the coordinator applies it
// whole, the threads' step loop and a collective of workers a slice each,
// and every element gets the same bits whichever slices it falls in.
import * as z from 'zod';
import { allocFloats } from '../tensor/alloc.js';
import { AdamConfig, AdamWConfig, adamSlice, createAdamState } from './adam.js';
import { SgdConfig, sgdSlice, type SgdState } from './sgd.js';

const SgdOptimizerConfig = SgdConfig.extend({ type: z.literal('sgd') });

/**
 * `type` picks the optimizer, `sgd` when left out. A parsed SGD config has
 * no `type` (an SgdConfig, as before Adam existed: a config's resolved form
 * and its hash, which checkpoints are matched by, stay as they were).
 */
export const OptimizerConfig = z.preprocess(
  (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) && !('type' in v) ? { type: 'sgd', ...v } : v),
  z.discriminatedUnion('type', [SgdOptimizerConfig, AdamConfig, AdamWConfig]),
).transform((c): SgdConfig | AdamConfig => {
  if (c.type !== 'sgd') return c;
  const { type: _sgd, ...sgd } = c;
  return sgd;
});
export type OptimizerConfig = z.output<typeof OptimizerConfig>;

export const OPTIMIZER_TYPES = ['sgd', 'adam', 'adamw'] as const;

export interface OptimizerState extends SgdState {
  /** SGD's velocity (empty without momentum, and for Adam). */
  velocity: Float32Array;
  /** Adam's first and second moments (empty for SGD). */
  m: Float32Array;
  v: Float32Array;
  /** Updates applied so far: the next is number step + 1 (Adam's bias correction counts it). */
  step: number;
}

const NONE = new Float32Array(0);

/** Whether the config is Adam or AdamW (an SgdConfig has no type). */
export function isAdam(config: OptimizerConfig): config is AdamConfig {
  return 'type' in config && (config.type === 'adam' || config.type === 'adamw');
}

/** The optimizer's name: 'sgd', 'adam' or 'adamw'. */
export function optimizerType(config: OptimizerConfig): (typeof OPTIMIZER_TYPES)[number] {
  return isAdam(config) ? config.type : 'sgd';
}

/** Zeroed state; `alloc` places its arrays (default: where the vector kernels use them in place). */
export function createOptimizerState(
  config: OptimizerConfig, numTrainable: number, alloc: (n: number) => Float32Array = allocFloats,
): OptimizerState {
  if (isAdam(config)) return { velocity: NONE, ...createAdamState(numTrainable, alloc), step: 0 };
  return { velocity: config.momentum > 0 ? alloc(numTrainable) : NONE, m: NONE, v: NONE, step: 0 };
}

/**
 * The state arrays an update reads and writes, by name, in a fixed order:
 * SGD's velocity (with momentum), Adam's m and v. What the threads' step
 * loop shares and a checkpoint keeps.
 */
export function stateArrays(config: OptimizerConfig, state: OptimizerState): { name: 'velocity' | 'm' | 'v'; array: Float32Array }[] {
  if (isAdam(config)) return [{ name: 'm', array: state.m }, { name: 'v', array: state.v }];
  return config.momentum > 0 ? [{ name: 'velocity', array: state.velocity }] : [];
}

/**
 * The update of params[from, to) with the mean gradient `grad` (same
 * indices) at learning rate lr: update number state.step + 1 (the caller
 * counts the updates: applyStep in src/train/step.ts after a whole one).
 * `decayMask[i]` is 1 where weight decay applies.
 */
export function optimizerSlice(
  config: OptimizerConfig, state: OptimizerState | SgdState, lr: number,
  params: Float32Array, grad: Float32Array, from: number, to: number, decayMask?: Uint8Array,
): void {
  if (!isAdam(config)) {
    sgdSlice(config, state, lr, params, grad, from, to, decayMask);
    return;
  }
  const s = state as Partial<OptimizerState>;
  if (s.m === undefined || s.v === undefined || s.step === undefined || s.m.length < to || s.v.length < to) {
    throw new RangeError(`optimizerSlice: ${config.type} needs a state with m and v of at least ${to} floats and a step count (createOptimizerState)`);
  }
  adamSlice(config, s as OptimizerState, lr, s.step + 1, params, grad, from, to, decayMask);
}
