// The in-thread computation of one global batch's reduced gradient sum: cut
// the batch into micro-shards, compute each leaf, reduce in the fixed tree
// order. The single-process trainer uses it directly; workers compute the
// aligned blocks of the range they are given (range.ts).
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { reduceNode, treeHeight, type NodeRounding } from '../reduce/tree.js';
import { leafGradient } from './step.js';
import { shardBounds } from '../data/microshard.js';

export { shardBounds };

/** The micro-shard count actually used for a batch of `rows` rows (a short last batch may have fewer). */
export function shardCount(rows: number, microShards: number): number {
  return Math.min(rows, microShards);
}

export interface BatchData {
  /** Gathered rows of the global batch: x (rows, inSize), y (rows, targetSize). */
  x: Float32Array;
  y: Float32Array;
  rows: number;
  xSize: number;
  ySize: number;
}

export interface BatchKeys {
  seed: number;
  step: number;
}

/** Sum of tree node (level, index) into out; `round` (--grad-wire bf16) rounds every node as it is formed. */
export function computeNode(
  model: Model, loss: Loss, data: BatchData, k: number, keys: BatchKeys,
  level: number, index: number, out: Float32Array, scratch: Float32Array[] = [], round?: NodeRounding,
): void {
  reduceNode(k, level, index, (i, buf) => {
    const [s, e] = shardBounds(data.rows, k, i);
    leafGradient(
      model, loss,
      data.x.subarray(s * data.xSize, e * data.xSize),
      data.y.subarray(s * data.ySize, e * data.ySize),
      e - s, { training: true, seed: keys.seed, step: keys.step, rowOffset: s }, buf,
    );
  }, out, scratch, round);
}

/** The whole batch's reduced sum (the tree's root) into out. */
export function computeBatch(
  model: Model, loss: Loss, data: BatchData, k: number, keys: BatchKeys, out: Float32Array, scratch: Float32Array[] = [], round?: NodeRounding,
): void {
  computeNode(model, loss, data, k, keys, treeHeight(k), 0, out, scratch, round);
}
