// Stochastic gradient descent on the flat buffer, PyTorch's formulas:
//   g <- g + weightDecay * w                       (decoupled from L1/L2 penalties, applied to decay params)
//   v <- momentum * v + g                          (v starts at 0)
//   step = nesterov ? g + momentum * v : v         (momentum 0: step = g)
//   w <- w - lr * step
// The coordinator is the only writer of weights (DESIGN.md principle 7);
// this state (velocity) is part of every checkpoint.
import { z } from 'zod';

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

export function createSgdState(config: SgdConfig, numTrainable: number): SgdState {
  return { velocity: new Float32Array(config.momentum > 0 ? numTrainable : 0) };
}

/**
 * One update of params[0, n) with the mean gradient `grad` (length >= n).
 * `decayMask[i]` (optional) is 1 where weight decay applies.
 */
export function sgdStep(
  config: SgdConfig, state: SgdState, lr: number,
  params: Float32Array, grad: Float32Array, n: number, decayMask?: Uint8Array,
): void {
  const mu = config.momentum;
  const wd = config.weightDecay;
  const v = state.velocity;
  for (let i = 0; i < n; i++) {
    let g = grad[i];
    if (wd !== 0 && (decayMask === undefined || decayMask[i] === 1)) g = Math.fround(g + Math.fround(wd * params[i]));
    let step = g;
    if (mu !== 0) {
      const vi = Math.fround(Math.fround(mu * v[i]) + g);
      v[i] = vi;
      step = config.nesterov ? Math.fround(g + Math.fround(mu * vi)) : vi;
    }
    params[i] = Math.fround(params[i] - Math.fround(lr * step));
  }
}
