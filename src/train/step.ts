// One training step's math, shared by every runtime:
//   1. leafGradient: a micro-shard's gradient SUM (not mean), its loss sum and
//      sample count, and its BatchNorm statistic accumulators, in one vector;
//   2. the fixed-order tree reduction of those vectors (src/reduce/tree.ts);
//   3. applyStep: divide by the global batch size (not by shards or workers,
//      so uneven shards are weighted right), add the L1/L2 penalty gradients,
//      take the optimizer's step (SGD, Adam, AdamW: src/optim/optimizer.ts),
//      fold the statistics into the running buffers; one
//      chain of operations per element, so applySlice can do it a slice at a
//      time (worker threads, each its own slice) with the same bits.
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { GRAD_EXTRA } from '../model/model.js';
import { Workspace } from '../nn/layer.js';
import type { ForwardContext } from '../nn/layer.js';
import { addL1Grad, addL2Grad, l1Penalty, l2Penalty } from '../optim/regularization.js';
import { optimizerSlice, type OptimizerConfig, type OptimizerState } from '../optim/optimizer.js';
import type { SgdState } from '../optim/sgd.js';
import { vector } from '../tensor/vector.js';

/** Length of a gradient vector for this model. */
export function gradLength(model: Model): number {
  return model.size + GRAD_EXTRA;
}

/** Scratch for the loss gradient, reused across calls. */
const dpredSpace = new Workspace();

/**
 * Forward + backward of one micro-shard: writes into `out` (length
 * gradLength(model)) the gradient of the SUM of the per-sample losses, the
 * statistic accumulators, the loss sum and the row count.
 */
export function leafGradient(
  model: Model, loss: Loss, x: Float32Array, y: Float32Array, rows: number, ctx: ForwardContext, out: Float32Array,
): void {
  const grads = model.grads;
  grads.fill(0);
  const pred = model.forward(x, rows, ctx);
  const dpred = dpredSpace.get(rows * model.outSize);
  const lossSum = loss.forwardBackward(pred, y, rows, model.outSize, dpred, 1);
  model.backward(dpred, rows);
  grads[model.size] = lossSum;
  grads[model.size + 1] = rows;
  if (out !== grads) out.set(grads.subarray(0, model.size + GRAD_EXTRA));
}

/** Per-parameter masks derived once from the model's entries. */
export interface StepPlan {
  readonly decayMask: Uint8Array;
}

export function planStep(model: Model): StepPlan {
  const decayMask = new Uint8Array(model.numTrainable);
  for (const e of model.entries) if (e.trainable && e.decay) decayMask.fill(1, e.offset, e.offset + e.size);
  return { decayMask };
}

export interface StepResult {
  /** Mean data loss over the global batch plus the regularization penalty. */
  loss: number;
  dataLoss: number;
  penalty: number;
  samples: number;
}

/**
 * The regularization penalty of the weights `params` (the model's by
 * default): lambda * sum |w| and lambda * sum w^2 over every regularized
 * entry, summed in entry order. Part of the step's loss; computed from the
 * weights before the step updates them.
 */
export function stepPenalty(model: Model, params: Float32Array = model.params): number {
  let penalty = 0;
  for (const e of model.entries) {
    if (!e.trainable || (e.l1 === 0 && e.l2 === 0)) continue;
    const w = params.subarray(e.offset, e.offset + e.size);
    if (e.l1 > 0) penalty += l1Penalty(w, e.l1);
    if (e.l2 > 0) penalty += l2Penalty(w, e.l2);
  }
  return penalty;
}

/**
 * Applies elements [from, to) of the reduced gradient sum `sum` of a global
 * batch of n samples: divides them by n, adds the L1/L2 penalty gradients,
 * takes the optimizer's step on the weights among them (params and the
 * state's arrays: whole-model buffers, indexed alike; update number
 * state.step + 1, which the caller counts) and folds the statistics among
 * them into the running buffers. `sum[from, to)` is used as scratch.
 *
 * Every element goes through its own fixed chain of operations, the same
 * whichever slices the vector is cut into, so worker threads can each apply
 * a slice and the weights are bit-identical to applyStep's.
 */
export function applySlice(
  model: Model, plan: StepPlan, sum: Float32Array, optimizer: OptimizerConfig, state: OptimizerState | SgdState, lr: number,
  n: number, from: number, to: number, params: Float32Array = model.params,
): void {
  const hi = Math.min(to, model.size);
  if (from >= hi) return;
  vector().scale(sum.subarray(from, hi), hi - from, 1 / n);
  for (const e of model.entries) {
    if (!e.trainable || (e.l1 === 0 && e.l2 === 0)) continue;
    const a = Math.max(e.offset, from);
    const b = Math.min(e.offset + e.size, hi);
    if (a >= b) continue;
    const w = params.subarray(a, b);
    const g = sum.subarray(a, b);
    if (e.l1 > 0) addL1Grad(w, e.l1, g);
    if (e.l2 > 0) addL2Grad(w, e.l2, g);
  }
  optimizerSlice(optimizer, state, lr, params, sum, from, Math.min(hi, model.numTrainable), plan.decayMask);
  // Statistics: s = (1 - m) s + m * (mean of the per-shard statistics).
  for (const e of model.entries) {
    if (e.trainable) continue;
    const m = e.momentum;
    for (let i = Math.max(e.offset, from); i < Math.min(e.offset + e.size, hi); i++) {
      params[i] = Math.fround((1 - m) * params[i] + m * sum[i]);
    }
  }
}

/**
 * Applies the reduced gradient sum `sum` (length gradLength(model)) of a
 * global batch: the update is written into model.params and counted in
 * state.step. `sum` is used as scratch (it becomes the mean gradient).
 */
export function applyStep(
  model: Model, plan: StepPlan, sum: Float32Array, optimizer: OptimizerConfig, state: OptimizerState | SgdState, lr: number,
): StepResult {
  const n = sum[model.size + 1];
  if (!(n > 0)) throw new Error(`reduced gradient covers ${n} samples`);
  const dataLoss = sum[model.size] / n;
  const penalty = stepPenalty(model);
  applySlice(model, plan, sum, optimizer, state, lr, n, 0, model.size);
  if ('step' in state) state.step++;
  return { loss: dataLoss + penalty, dataLoss, penalty, samples: n };
}
