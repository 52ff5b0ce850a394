// Stochastic gradient descent on the flat buffer, PyTorch's formulas:
//   g <- g + weightDecay * w                       (decoupled from L1/L2 penalties, applied to decay params)
//   v <- momentum * v + g                          (v starts at 0)
//   step = nesterov ? g + momentum * v : v         (momentum 0: step = g)
//   w <- w - lr * step
// The coordinator is the only writer of weights (docs/design.md principle 7);
// this state (velocity) is part of every checkpoint.
import * as z from 'zod';
import { allocFloats } from '../tensor/alloc.js';
import { vector } from '../tensor/vector.js';
import { forDecayRuns } from './decay-runs.js';

export const SgdConfig = z.strictObject({
  /** Base learning rate (the schedule scales it). */
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1).default(0),
  nesterov: z.boolean().default(false),
  /** PyTorch-style weight decay on weights (not biases). */
  weightDecay: z.number().nonnegative().default(0),
});
export type SgdConfig = z.infer<typeof SgdConfig>;

export interface SgdState {
  /** Velocity, one float per trainable parameter (empty without momentum). */
  velocity: Float32Array;
}

/** `alloc` places the velocity (default: where the vector kernels use it in place, WebAssembly memory with the wasm kernels). */
export function createSgdState(config: SgdConfig, numTrainable: number, alloc: (n: number) => Float32Array = allocFloats): SgdState {
  return { velocity: config.momentum > 0 ? alloc(numTrainable) : new Float32Array(0) };
}

/**
 * One update of params[0, n) with the mean gradient `grad` (length >= n).
 * `decayMask[i]` (optional) is 1 where weight decay applies. The arithmetic
 * is the active vector kernels' sgdRange (src/tensor/vector.ts), run by run
 * of the mask.
 */
export function sgdStep(
  config: SgdConfig, state: SgdState, lr: number,
  params: Float32Array, grad: Float32Array, n: number, decayMask?: Uint8Array,
): void {
  sgdSlice(config, state, lr, params, grad, 0, n, decayMask);
}

/**
 * The update of params[from, to) alone (grad and the velocity indexed
 * alike): every element's arithmetic is sgdStep's, so slices updated apart
 * give sgdStep's bits.
 */
export function sgdSlice(
  config: SgdConfig, state: SgdState, lr: number,
  params: Float32Array, grad: Float32Array, from: number, to: number, decayMask?: Uint8Array,
): void {
  if (from >= to) return;
  const mu = config.momentum;
  const wd = config.weightDecay;
  const v = mu !== 0 ? state.velocity : null;
  const k = vector();
  forDecayRuns(wd === 0 ? undefined : decayMask, from, to, (a, b, decay) => {
    k.sgdRange(params, grad, v, a, b, lr, mu, wd, config.nesterov, decay && wd !== 0);
  });
}
