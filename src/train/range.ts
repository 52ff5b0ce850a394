// A worker's compute, the same in a worker thread, a Node worker process and
// a browser tab: given the current weights and a range [start, end) of a
// global batch's micro-shards, gather the range's rows and compute the sums
// of the range's aligned blocks (src/reduce/tree.ts) in the fixed tree
// order. The shells around it (node/threads/thread-entry.ts, the network worker,
// the browser worker) only move messages and buffers.
//
// Rows sit at their places in the batch buffer (row r of the batch at
// r * xSize), so the micro-shard bounds and the dropout keys (seed, step,
// row) are the same as in a single-process run.
import type { Loss } from '../losses/loss.js';
import type { Model } from '../model/model.js';
import { alignedBlocks, type NodeRounding, type TreeNode } from '../reduce/tree.js';
import { allocFloats } from '../tensor/alloc.js';
import { computeNode, shardBounds, type BatchData } from './batch.js';
import { gradLength } from './step.js';

/** The training set as a worker holds it: x (n, xSize), y (n, ySize). */
export interface RangeData {
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly n: number;
  readonly xSize: number;
  readonly ySize: number;
}

/** One range of one global batch. */
export interface RangeRequest {
  /** 0-based step (keys dropout masks). */
  readonly step: number;
  /** Micro-shards in the batch and rows in the batch. */
  readonly k: number;
  readonly rows: number;
  readonly start: number;
  readonly end: number;
  /** Sample indices of the range's rows only (rowsOf(request)). */
  readonly indices: ArrayLike<number>;
}

export interface RangeWorker {
  readonly model: Model;
  readonly gradLen: number;
  /** The weights version model.params holds (-1: none yet). */
  readonly version: number;
  /**
   * Copies `params` into the model as weights version `version` (no copy if
   * it already holds it); with `current`, all but params[current[0],
   * current[1]), which the model holds already (a thread that applied that
   * slice of the step itself).
   */
  setWeights(version: number, params: Float32Array, current?: readonly [number, number]): void;
  /** Why this worker cannot compute the request, or null. */
  check(request: RangeRequest): string | null;
  /**
   * Computes the aligned blocks of the range, in order, calling
   * `emit(b, node, sum)` with each block's sum (a buffer reused for the next
   * block: copy it out). Returns the blocks.
   */
  compute(request: RangeRequest, emit: (b: number, node: TreeNode, sum: Float32Array) => void, round?: NodeRounding): TreeNode[];
}

/** Rows [start, end) of the batch that micro-shards [request.start, request.end) hold. */
export function rowsOf(request: { rows: number; k: number; start: number; end: number }): [number, number] {
  return [shardBounds(request.rows, request.k, request.start)[0], shardBounds(request.rows, request.k, request.end - 1)[1]];
}

/** Datasets of up to this many samples get a cached view per sample (about 100 bytes each). */
const ROW_VIEWS = 1 << 17;

export function createRangeWorker(model: Model, loss: Loss, seed: number, data: RangeData, maxBatch: number): RangeWorker {
  const gradLen = gradLength(model);
  // In the kernels' memory (WebAssembly's with the wasm kernels), so the kernels read them in place.
  const xBuf = allocFloats(maxBatch * data.xSize);
  const yBuf = allocFloats(maxBatch * data.ySize);
  const blockSum = allocFloats(gradLen);
  // A view per sample, made once: a new one per row of every step was most of what a step allocated
  // (and collecting it paused the thread while the others waited). Up to ROW_VIEWS samples.
  const views: Float32Array[] = data.n <= ROW_VIEWS ? new Array<Float32Array>(data.n) : [];
  const xRow = (i: number): Float32Array => {
    if (data.n > ROW_VIEWS) return data.x.subarray(i * data.xSize, (i + 1) * data.xSize);
    return views[i] ??= data.x.subarray(i * data.xSize, (i + 1) * data.xSize);
  };
  const scratch: Float32Array[] = [];
  let version = -1;

  function check(r: RangeRequest): string | null {
    if (!(Number.isInteger(r.k) && r.k >= 1 && r.k <= r.rows)) return `${r.k} micro-shards for ${r.rows} rows`;
    if (r.rows > maxBatch) return `batch of ${r.rows} rows, this worker holds at most ${maxBatch}`;
    if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && 0 <= r.start && r.start < r.end && r.end <= r.k)) {
      return `range [${r.start}, ${r.end}) is not inside [0, ${r.k})`;
    }
    const [rowStart, rowEnd] = rowsOf(r);
    if (r.indices.length !== rowEnd - rowStart) return `${r.indices.length} indices for the range's ${rowEnd - rowStart} rows`;
    for (let j = 0; j < r.indices.length; j++) {
      const i = r.indices[j];
      if (!(Number.isInteger(i) && i >= 0 && i < data.n)) return `indices[${j}] = ${i} is not a sample index in 0..${data.n - 1}`;
    }
    return null;
  }

  return {
    model,
    gradLen,
    get version() { return version; },
    setWeights(v, params, current) {
      if (v === version) return;
      if (params.length !== model.size) throw new RangeError(`weights of ${params.length} floats, the model has ${model.size}`);
      if (current === undefined) {
        model.params.set(params);
      } else {
        const [a, b] = current;
        if (a > 0) model.params.set(params.subarray(0, a));
        if (b < params.length) model.params.set(params.subarray(b), b);
      }
      version = v;
    },
    check,
    compute(r, emit, round) {
      const [rowStart, rowEnd] = rowsOf(r);
      const { xSize, ySize } = data;
      for (let row = rowStart; row < rowEnd; row++) {
        const i = r.indices[row - rowStart];
        xBuf.set(xRow(i), row * xSize);
        if (ySize === 1) yBuf[row] = data.y[i];
        else yBuf.set(data.y.subarray(i * ySize, (i + 1) * ySize), row * ySize);
      }
      const batch: BatchData = { x: xBuf, y: yBuf, rows: r.rows, xSize, ySize };
      const keys = { seed, step: r.step };
      const blocks = alignedBlocks(r.k, r.start, r.end);
      for (let b = 0; b < blocks.length; b++) {
        computeNode(model, loss, batch, r.k, keys, blocks[b].level, blocks[b].index, blockSum, scratch, round);
        emit(b, blocks[b], blockSum);
      }
      return blocks;
    },
  };
}
