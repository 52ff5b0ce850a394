// Adam and AdamW on the flat buffer, PyTorch 1.13's formulas
// (torch.optim.Adam / AdamW), t the 1-based number of the update:
//   adam   g <- g + weightDecay * w                 (L2 in the gradient, decay params)
//   adamw  w <- w * (1 - lr * weightDecay)          (decoupled, decay params)
//   m <- b1 m + (1 - b1) g                          (m, v start at 0)
//   v <- b2 v + (1 - b2) g^2
//   w <- w - (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// eps outside the square root, as PyTorch. Weight decay applies where the
// model's decay mask says (weights; biases too with regularizeBias), as for
// SGD; PyTorch applies it to every parameter of its group.
//
// Arithmetic: each element in float64 from its float32 w, g, m and v, the
// three stored values rounded once (vector.ts adamRange, the same bits in
// TypeScript and WebAssembly). b^t is a product of float64 multiplications
// (powInt), not Math.pow, whose last bits may differ between engines.
// The update is a pure function of the slice [from, to): threads and
// workers that each apply a slice get the bits of one whole update.
import * as z from 'zod';
import { allocFloats } from '../tensor/alloc.js';
import { vector } from '../tensor/vector.js';
import { forDecayRuns } from './decay-runs.js';

const beta = z.number().min(0).lt(1, { error: 'expected a number in [0, 1)' });
const adamFields = {
  /** Base learning rate (the schedule scales it). */
  lr: z.number().positive(),
  /** Decay rates of the first and second moment estimates. */
  betas: z.tuple([beta, beta]).default([0.9, 0.999]),
  /** Added to the denominator, outside the square root. */
  eps: z.number().positive().default(1e-8),
};

export const AdamConfig = z.strictObject({
  type: z.literal('adam'),
  ...adamFields,
  /** L2 penalty added to the gradient (PyTorch Adam's weight_decay), on weights. */
  weightDecay: z.number().nonnegative().default(0),
});

export const AdamWConfig = z.strictObject({
  type: z.literal('adamw'),
  ...adamFields,
  /** Decoupled weight decay w *= 1 - lr * weightDecay (PyTorch AdamW's default 0.01), on weights. */
  weightDecay: z.number().nonnegative().default(0.01),
});

export type AdamConfig = z.infer<typeof AdamConfig> | z.infer<typeof AdamWConfig>;

export interface AdamState {
  /** First and second moment estimates, one float each per trainable parameter. */
  m: Float32Array;
  v: Float32Array;
}

/** `alloc` places m and v (default: where the vector kernels use them in place). */
export function createAdamState(numTrainable: number, alloc: (n: number) => Float32Array = allocFloats): AdamState {
  return { m: alloc(numTrainable), v: alloc(numTrainable) };
}

/** b^t for a whole t >= 0 by repeated squaring: float64 multiplications only, the same bits in every engine. */
export function powInt(b: number, t: number): number {
  let result = 1, base = b, e = t;
  while (e > 0) {
    if (e % 2 === 1) result *= base;
    base *= base;
    e = Math.floor(e / 2);
  }
  return result;
}

/**
 * Update number t (1-based) of params[from, to) with the mean gradient
 * grad (same indices) and the moments of `state`; lr is the step's rate.
 */
export function adamSlice(
  config: AdamConfig, state: AdamState, lr: number, t: number,
  params: Float32Array, grad: Float32Array, from: number, to: number, decayMask?: Uint8Array,
): void {
  if (from >= to) return;
  if (!(Number.isInteger(t) && t >= 1)) throw new RangeError(`adamSlice: the update number t must be a whole number >= 1, got ${t}`);
  const [b1, b2] = config.betas;
  const stepSize = lr / (1 - powInt(b1, t));
  const sqrtBc2 = Math.sqrt(1 - powInt(b2, t));
  const wd = config.weightDecay;
  const decoupled = config.type === 'adamw';
  const shrink = 1 - lr * wd;
  const k = vector();
  forDecayRuns(wd === 0 ? undefined : decayMask, from, to, (a, b, decay) => {
    k.adamRange(params, grad, state.m, state.v, a, b, b1, b2, stepSize, sqrtBc2, config.eps, wd, shrink, decoupled, decay && wd !== 0);
  });
}
