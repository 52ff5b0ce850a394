// The engine of `--workers 0`: every micro-shard in the coordinator's own
// thread, summed in the fixed tree order (src/train/batch.ts computeBatch).
import type { Dataset } from '../../src/data/dataset.js';
import type { Loss } from '../../src/losses/loss.js';
import type { Model } from '../../src/model/model.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { computeBatch, shardCount, type BatchData } from '../../src/train/batch.js';
import type { GradientEngine } from './engine.js';
import { nodeRounding, type GradWire } from '../../src/reduce/bf16.js';

/** Copies the rows of `indices` into a batch buffer. */
export function gatherRows(ds: Dataset, indices: ArrayLike<number>, xOut: Float32Array, yOut: Float32Array): void {
  const xs = ds.x.length / ds.n;
  const ys = ds.y.length / ds.n;
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r];
    xOut.set(ds.x.subarray(i * xs, (i + 1) * xs), r * xs);
    yOut.set(ds.y.subarray(i * ys, (i + 1) * ys), r * ys);
  }
}

/** Everything in the coordinator's thread (`--workers 0`). */
export function createLocalEngine(model: Model, loss: Loss, train: Dataset, seed: number, maxBatch: number, wire: GradWire = 'f32'): GradientEngine {
  const xs = train.x.length / train.n;
  const ys = train.y.length / train.n;
  // In the kernels' memory (WebAssembly's with the wasm kernels), so they read the batch in place.
  const xBuf = allocFloats(maxBatch * xs);
  const yBuf = allocFloats(maxBatch * ys);
  const scratch: Float32Array[] = [];
  // --grad-wire bf16: every node rounded as it is formed, as every other engine does.
  const round = nodeRounding(wire, model.numTrainable);
  return {
    workers: 0,
    async batchGradient(job, out) {
      const rows = job.indices.length;
      gatherRows(train, job.indices, xBuf, yBuf);
      const data: BatchData = { x: xBuf.subarray(0, rows * xs), y: yBuf.subarray(0, rows * ys), rows, xSize: xs, ySize: ys };
      computeBatch(model, loss, data, shardCount(rows, job.microShards), { seed, step: job.step }, out, scratch, round);
    },
    async close() {},
  };
}
