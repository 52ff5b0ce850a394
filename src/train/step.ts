// One training step's math, shared by every runtime:
//   1. leafGradient: a micro-shard's gradient SUM (not mean), its loss sum and
//      sample count, and its BatchNorm statistic accumulators, in one vector;
//   2. the fixed-order tree reduction of those vectors (src/reduce/tree.ts);
//   3. applyStep: divide by the global batch size (not by shards or workers,
//      so uneven shards are weighted right), add the L1/L2 penalty gradients,
//      take the SGD step, fold the statistics into the running buffers.
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { GRAD_EXTRA } from '../model/model.js';
import { Workspace } from '../nn/layer.js';
import type { ForwardContext } from '../nn/layer.js';
import { addL1Grad, addL2Grad, l1Penalty, l2Penalty } from '../optim/regularization.js';
import { sgdStep, type SgdConfig, type SgdState } from '../optim/sgd.js';
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
 * Applies the reduced gradient sum `sum` (length gradLength(model)) of a
 * global batch: the update is written into model.params. `sum` is used as
 * scratch (it becomes the mean gradient).
 */
export function applyStep(
  model: Model, plan: StepPlan, sum: Float32Array, sgd: SgdConfig, state: SgdState, lr: number,
): StepResult {
  const n = sum[model.size + 1];
  if (!(n > 0)) throw new Error(`reduced gradient covers ${n} samples`);
  const dataLoss = sum[model.size] / n;
  const params = model.params;
  const inv = 1 / n;
  vector().scale(sum, model.size, inv);
  let penalty = 0;
  for (const e of model.entries) {
    if (!e.trainable || (e.l1 === 0 && e.l2 === 0)) continue;
    const w = params.subarray(e.offset, e.offset + e.size);
    const g = sum.subarray(e.offset, e.offset + e.size);
    if (e.l1 > 0) { penalty += l1Penalty(w, e.l1); addL1Grad(w, e.l1, g); }
    if (e.l2 > 0) { penalty += l2Penalty(w, e.l2); addL2Grad(w, e.l2, g); }
  }
  sgdStep(sgd, state, lr, params, sum, model.numTrainable, plan.decayMask);
  // Statistics: s = (1 - m) s + m * (mean of the per-shard statistics).
  for (const e of model.entries) {
    if (e.trainable) continue;
    const m = e.momentum;
    for (let i = e.offset; i < e.offset + e.size; i++) {
      params[i] = Math.fround((1 - m) * params[i] + m * sum[i]);
    }
  }
  return { loss: dataLoss + penalty, dataLoss, penalty, samples: n };
}
