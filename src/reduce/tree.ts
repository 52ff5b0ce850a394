// The fixed reduction tree over micro-shards (docs/design.md principle 3). This
// is the only place the order of gradient additions is defined; the
// single-process trainer, the worker threads and the coordinator all use it.
//
// K micro-shards are the leaves 0..K-1 of a binary tree. Node (level l,
// index j) covers leaves [j*2^l, (j+1)*2^l) clipped to [0, K). Its sum is
//   sum(l, j) = sum(l-1, 2j) + sum(l-1, 2j+1)   if the right child covers any leaf,
//   sum(l, j) = sum(l-1, 2j)                    otherwise (a copy, no arithmetic).
// The root is (L, 0) with L = ceil(log2 K). Every addition is one float32
// add per element, so the root's bits depend only on the leaves' bits.
//
// A worker holding a contiguous range [start, end) of leaves returns the sums
// of the maximal tree nodes inside it (alignedBlocks: O(log K) of them); the
// coordinator combines those blocks into the root with combineBlocks. The
// result is the same whichever worker held which range.
//
// `round` (optional, `--grad-wire bf16`: src/reduce/bf16.ts) is applied to
// every node when it is formed: a leaf once computed, an inner node once its
// children are added. A node given whole (a block another worker formed) is
// taken as it is: it was rounded where it was formed. So the rounding, like
// the additions, depends on the tree alone.

import { allocFloats } from '../tensor/alloc.js';
import { vector } from '../tensor/vector.js';

export interface TreeNode {
  readonly level: number;
  readonly index: number;
  /** Leaves covered: [start, end). */
  readonly start: number;
  readonly end: number;
}

/** Height of the tree over K leaves: ceil(log2 K) (0 for K = 1). */
export function treeHeight(k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`micro-shard count must be a positive integer, got ${k}`);
  let l = 0;
  while (2 ** l < k) l++;
  return l;
}

export function nodeAt(k: number, level: number, index: number): TreeNode {
  const start = index * 2 ** level;
  return { level, index, start, end: Math.min(start + 2 ** level, k) };
}

/** The maximal tree nodes that tile the leaf range [start, end), left to right. */
export function alignedBlocks(k: number, start: number, end: number): TreeNode[] {
  if (!(Number.isInteger(start) && Number.isInteger(end) && 0 <= start && start < end && end <= k)) {
    throw new RangeError(`invalid micro-shard range [${start}, ${end}) for ${k} micro-shards`);
  }
  const height = treeHeight(k);
  const blocks: TreeNode[] = [];
  let s = start;
  while (s < end) {
    let level = 0;
    // Grow while the parent is aligned at s and still inside [s, end).
    while (level < height && s % 2 ** (level + 1) === 0 && Math.min(s + 2 ** (level + 1), k) <= end) level++;
    const node = nodeAt(k, level, s / 2 ** level);
    blocks.push(node);
    s = node.end;
  }
  return blocks;
}

/**
 * The one recursion of the tree: the sum of node (level, index) into `out`.
 * `known(level, index, out)` writes a node's sum when it has it (a leaf
 * computed now, a block a worker sent) and returns true; any other node is
 * the sum of its children, left plus right, in float32.
 */
function sumNode(
  k: number, level: number, index: number,
  known: (level: number, index: number, out: Float32Array) => boolean,
  out: Float32Array, scratch: Float32Array[], round: NodeRounding | undefined,
): void {
  if (known(level, index, out)) return;
  if (level === 0) throw new Error(`no partial sum covers micro-shard ${index}`);
  sumNode(k, level - 1, 2 * index, known, out, scratch, round);
  const right = nodeAt(k, level - 1, 2 * index + 1);
  if (right.start >= k) return;
  // One scratch buffer per level: depth-first needs at most `height` of them.
  let buf = scratch[level];
  if (buf === undefined || buf.length !== out.length) buf = scratch[level] = allocFloats(out.length);
  sumNode(k, level - 1, 2 * index + 1, known, buf, scratch, round);
  addInto(out, buf);
  round?.(out);
}

/** Rounds a node's vector in place when the node is formed (`--grad-wire bf16`); absent: float32 throughout. */
export type NodeRounding = (node: Float32Array) => void;

/** Computes the sum of node (level, index) into `out`; `leaf(i, buf)` writes leaf i's vector into buf. */
export function reduceNode(
  k: number, level: number, index: number,
  leaf: (i: number, out: Float32Array) => void,
  out: Float32Array, scratch: Float32Array[] = [], round?: NodeRounding,
): void {
  sumNode(k, level, index, (l, i, dst) => {
    if (l !== 0) return false;
    leaf(i, dst);
    round?.(dst);
    return true;
  }, out, scratch, round);
}

/** out += b elementwise (float32 adds; the active vector kernels, WebAssembly SIMD or the reference). */
export function addInto(out: Float32Array, b: Float32Array): void {
  vector().addInto(out, b, out.length);
}

/** Key of a node in a block map. */
export function nodeKey(level: number, index: number): string {
  return `${level}:${index}`;
}

/**
 * Computes the sum of node (level, index) into `out` from block sums (keyed
 * by nodeKey) that tile the node's leaves: a given block is copied, a
 * missing one is the sum of its children, in the tree's order. Throws,
 * naming the micro-shard, if a leaf is not covered.
 */
export function combineNode(
  k: number, level: number, index: number, blocks: ReadonlyMap<string, Float32Array>, out: Float32Array, scratch: Float32Array[] = [],
  round?: NodeRounding,
): void {
  sumNode(k, level, index, (l, i, dst) => {
    const given = blocks.get(nodeKey(l, i));
    if (given === undefined) return false;
    dst.set(given);
    return true;
  }, out, scratch, round);
}

/**
 * Combines block sums (keyed by nodeKey) that tile [0, K) into the root sum,
 * written into `out`. Throws, naming the missing leaves, if the blocks do not
 * cover every micro-shard.
 */
export function combineBlocks(
  k: number, blocks: ReadonlyMap<string, Float32Array>, out: Float32Array, scratch: Float32Array[] = [], round?: NodeRounding,
): void {
  combineNode(k, treeHeight(k), 0, blocks, out, scratch, round);
}
