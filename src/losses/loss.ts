// The one interface every loss implements, and the argument and target
// checks they share.
//
// Shapes (n samples in one call, usually one micro-shard):
//   pred   (n, D)            the model's output, D = outputSize
//   target (n, targetSize)   targetSize(D): 1 for a class id, D otherwise
//   dpred  (n, D)            overwritten with scale * d(sum_n loss_n)/dpred
//   perSample (n)            optional, the loss of each sample
//
// Reduction contract (docs/design.md principle 3): forwardBackward returns the SUM
// of the per-sample losses of the call, accumulated in a float64 JS number;
// the trainer calls it with scale = 1 and divides the reduced sum (and
// gradient) by the global batch size later. For a mean over the call pass
// scale = 1/n. Elementwise losses on (n, D) (BCE, MSE, MAE, hinge) define a
// sample's loss as the MEAN over its D elements (PyTorch reduction 'mean',
// Keras' default), so scale applies per sample.
//
// Arithmetic: every loss reads float32 inputs, computes in float64 and
// rounds each gradient entry to float32 once when it stores it. Each row is
// computed on its own (except soft_f1, see soft-f1.ts), so a sample gets the
// same bits whichever rows share its call.

import { dptError } from '../errors.js';

/**
 * What one target row holds:
 *   class   one class id in [0, D), stored as a float (targetSize 1)
 *   probs   a probability (or one-hot) row of D non-negative numbers
 *   binary  D numbers in [0, 1] (0/1 labels or soft targets)
 *   pm1     D labels, each exactly -1 or +1
 *   real    D finite real numbers (regression)
 */
export type TargetKind = 'class' | 'probs' | 'binary' | 'pm1' | 'real';

export interface Loss {
  readonly name: string;
  /** What a target row holds (lets the trainer check a dataset against the loss up front). */
  readonly target: TargetKind;
  /**
   * True when the value couples the samples of one call (soft_f1): it is then
   * a function of the whole call, not a sum of independent per-sample terms,
   * and it depends on how the batch is cut into calls (micro-shards).
   */
  readonly shardLevel: boolean;
  /** Per-sample target size given the model's per-sample output size D (class-label losses: 1). */
  targetSize(outputSize: number): number;
  /**
   * For n samples: pred [n, D], target [n, targetSize]. Writes per-sample losses into perSample
   * (length n) if given, writes d(scale * sum_n loss_n)/dpred into dpred (overwrite, not
   * accumulate), returns sum_n loss_n (a JS number, accumulated in float64).
   * Throws DPT_ERR_SHAPE for buffers too short, DPT_ERR_DATASET for an invalid target.
   */
  forwardBackward(
    pred: Float32Array, target: Float32Array, n: number, outputSize: number,
    dpred: Float32Array, scale: number, perSample?: Float64Array,
  ): number;
}

/**
 * Checks the sizes of a forwardBackward call. Buffers may be longer than
 * needed (reused workspaces); only the first n rows are read and written.
 * `minOutputs` is 2 for the class-label losses: with one output there is
 * nothing to choose between.
 */
export function checkCall(
  loss: Loss, pred: Float32Array, target: Float32Array, n: number, outputSize: number,
  dpred: Float32Array, perSample: Float64Array | undefined, minOutputs = 1,
): void {
  const name = loss.name;
  if (!Number.isInteger(n) || n < 0) throw dptError('DPT_ERR_SHAPE', `loss '${name}': sample count must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(outputSize) || outputSize < minOutputs) {
    const hint = minOutputs > 1 ? ` (a class-label loss needs one output per class; for one output use binary_cross_entropy_logits)` : '';
    throw dptError('DPT_ERR_SHAPE', `loss '${name}': output size must be an integer >= ${minOutputs}, got ${outputSize}${hint}`);
  }
  const t = loss.targetSize(outputSize);
  if (pred.length < n * outputSize) throw dptError('DPT_ERR_SHAPE', `loss '${name}': pred holds ${pred.length} floats, expected n * D = ${n} * ${outputSize}`);
  if (dpred.length < n * outputSize) throw dptError('DPT_ERR_SHAPE', `loss '${name}': dpred holds ${dpred.length} floats, expected n * D = ${n} * ${outputSize}`);
  if (target.length < n * t) throw dptError('DPT_ERR_SHAPE', `loss '${name}': target holds ${target.length} floats, expected n * ${t} = ${n * t} (${loss.target} targets)`);
  if (perSample !== undefined && perSample.length < n) throw dptError('DPT_ERR_SHAPE', `loss '${name}': perSample holds ${perSample.length} numbers, expected n = ${n}`);
}

/**
 * The class id of sample i (target[i]), checked: an integer in [0, C).
 * The index is the row within the call.
 */
export function readLabel(lossName: string, target: Float32Array, i: number, numClasses: number): number {
  const v = target[i];
  if (!Number.isInteger(v) || v < 0 || v >= numClasses) {
    throw dptError('DPT_ERR_DATASET',
      `loss '${lossName}': sample ${i} has class label ${v}; labels must be integers in [0, ${numClasses}) (one per model output)`);
  }
  return v;
}

/** Throws DPT_ERR_DATASET for target element k (row i) unless ok. */
export function checkTarget(ok: boolean, lossName: string, target: Float32Array, k: number, rowSize: number, rule: string): void {
  if (ok) return;
  const i = Math.floor(k / rowSize);
  const j = k - i * rowSize;
  throw dptError('DPT_ERR_DATASET', `loss '${lossName}': sample ${i} has target ${target[k]} at position ${j}; ${rule}`);
}
