// Cutting a global batch into K micro-shards, the unit of work and of
// reduction (docs/design.md principle 3), and copying a batch's rows into
// preallocated buffers.
//
// The cut is numpy.array_split's: B rows into K contiguous shards, the first
// B mod K shards get floor(B/K) + 1 rows and the rest floor(B/K). E.g.
// B = 8, K = 3 -> [0, 3), [3, 6), [6, 8): sizes 3, 3, 2. It depends only on
// (B, K), never on the number of workers.

import { dptError } from '../errors.js';
import { type Dataset, sampleSize } from './dataset.js';

/** A micro-shard: rows [start, end) of the global batch. */
export type RowRange = readonly [start: number, end: number];

/** The K contiguous row ranges of a batch of `batchSize` rows (array_split style). */
export function splitMicroShards(batchSize: number, K: number): RowRange[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw dptError('DPT_ERR_CONFIG', `batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!Number.isInteger(K) || K < 1) {
    throw dptError('DPT_ERR_CONFIG', `the micro-shard count K must be a positive integer, got ${K}`);
  }
  if (K > batchSize) {
    throw dptError('DPT_ERR_CONFIG', `the micro-shard count K = ${K} exceeds the batch size ${batchSize}: ` +
      `every micro-shard needs at least one row (lower K, or raise the batch size)`);
  }
  const out: RowRange[] = [];
  for (let k = 0; k < K; k++) out.push(shardBounds(batchSize, K, k));
  return out;
}

/** Rows [start, end) of micro-shard k when `rows` rows are cut into K (no checks: the hot path). */
export function shardBounds(rows: number, K: number, k: number): [number, number] {
  const base = Math.floor(rows / K);
  const extra = rows % K; // the first `extra` shards get one more row
  const start = k * base + Math.min(k, extra);
  return [start, start + base + (k < extra ? 1 : 0)];
}

/**
 * Copy the rows `indices` of ds into xOut (rows, ...xShape) and yOut
 * (rows, ...yShape), row r from sample indices[r]. The outputs must hold at
 * least indices.length rows; rows beyond are left untouched. Returns the
 * number of rows written.
 */
export function gather(ds: Dataset, indices: ArrayLike<number>, xOut: Float32Array, yOut: Float32Array): number {
  const sx = sampleSize(ds.xShape);
  const sy = sampleSize(ds.yShape);
  const rows = indices.length;
  if (xOut.length < rows * sx) {
    throw dptError('DPT_ERR_SHAPE', `gather: xOut holds ${xOut.length} floats, ${rows} rows of ${sx} need ${rows * sx}`);
  }
  if (yOut.length < rows * sy) {
    throw dptError('DPT_ERR_SHAPE', `gather: yOut holds ${yOut.length} floats, ${rows} rows of ${sy} need ${rows * sy}`);
  }
  const x = ds.x;
  const y = ds.y;
  const n = ds.n;
  for (let r = 0; r < rows; r++) {
    const i = indices[r];
    if (!(i >= 0 && i < n && Number.isInteger(i))) {
      throw dptError('DPT_ERR_DATASET', `gather from "${ds.name}": index ${i} at row ${r} is not a sample index in 0..${n - 1}`);
    }
    const xs = i * sx;
    const xd = r * sx;
    for (let j = 0; j < sx; j++) xOut[xd + j] = x[xs + j];
    const ys = i * sy;
    const yd = r * sy;
    for (let j = 0; j < sy; j++) yOut[yd + j] = y[ys + j];
  }
  return rows;
}
