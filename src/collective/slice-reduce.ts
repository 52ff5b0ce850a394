// A slice owner's reduction (NOTES-coll.md, step 4): it receives, from every
// contributor with micro-shards, the owner's slice of each aligned block of
// that contributor's range, and combines them into the slice of the root
// sum with the tree's one recursion (combineNode over views of the slices).
// Every element of the vector goes through its own chain of float32 adds,
// in the tree's order, whatever slice it falls in: the owners' slices put
// together are, bit for bit, what combineBlocks gives over whole vectors
// (the star's coordinator, `--workers 0`). test/collective/slice-reduce.test.ts
// checks it over random memberships, ranges and both wires.
//
// Parts are checked before they are taken: from a contributor that computes
// for this step, once, naming exactly its range's aligned blocks, of the
// slice's length, finite. A problem is returned as a sentence naming the
// sender (the caller reports the peer and drops it), never thrown.
import { nodeRounding, type GradWire } from '../reduce/bf16.js';
import { combineNode, nodeKey, treeHeight } from '../reduce/tree.js';
import { sendersTo, type CollectivePlan } from './schedule.js';

export interface BlockRef {
  readonly level: number;
  readonly index: number;
}

export class SliceReducer {
  readonly from: number;
  readonly to: number;
  private readonly expected: Set<number>;
  private readonly blocks = new Map<string, Float32Array>();
  private readonly got = new Set<number>();
  private readonly scratch: Float32Array[] = [];

  /**
   * The reduction of slice `slice` of `plan`; `numTrainable` and `wire` say
   * which elements are rounded to bf16 as nodes are formed.
   */
  constructor(
    private readonly plan: CollectivePlan, readonly slice: number,
    private readonly numTrainable: number, private readonly wire: GradWire,
  ) {
    const owner = plan.contributors[plan.owners[slice]];
    this.from = owner.from;
    this.to = owner.to;
    this.expected = new Set(sendersTo(plan, slice));
    // The owner's own blocks are added with add() like any other contributor's.
    if (owner.blocks.length > 0) this.expected.add(plan.owners[slice]);
  }

  /** Contributors whose part has not come yet. */
  missing(): number[] {
    return [...this.expected].filter((c) => !this.got.has(c)).sort((a, b) => a - b);
  }

  complete(): boolean {
    return this.got.size === this.expected.size;
  }

  /**
   * Takes contributor c's part: its blocks' slices, one after the other in
   * `sums` (kept by reference until reduce(): the caller must not reuse the
   * buffer). Returns why the part cannot be taken, or null.
   */
  add(c: number, blocks: readonly BlockRef[], sums: Float32Array): string | null {
    if (!this.expected.has(c)) return `sent a part of slice ${this.slice}, but computes no micro-shard of this step`;
    if (this.got.has(c)) return `sent its part of slice ${this.slice} twice`;
    const want = this.plan.contributors[c].blocks;
    if (blocks.length !== want.length || blocks.some((b, i) => b.level !== want[i].level || b.index !== want[i].index)) {
      return `sent blocks ${blocks.map((b) => nodeKey(b.level, b.index)).join(' ')}, its range's are ${want.map((b) => nodeKey(b.level, b.index)).join(' ')}`;
    }
    const len = this.to - this.from;
    if (sums.length !== want.length * len) return `sent ${sums.length} floats, ${want.length} blocks of slice ${this.slice} need ${want.length * len}`;
    for (let i = 0; i < sums.length; i++) {
      // x - x is 0 for finite x, NaN for NaN and ±Infinity.
      if (sums[i] - sums[i] !== 0) return `sent a non-finite value (element ${this.from + (i % len)} of block ${Math.floor(i / len)})`;
    }
    want.forEach((b, i) => this.blocks.set(nodeKey(b.level, b.index), sums.subarray(i * len, (i + 1) * len)));
    this.got.add(c);
    return null;
  }

  /** The slice of the root sum, into out (length to - from). Throws if a part is missing. */
  reduce(out: Float32Array): void {
    if (!this.complete()) throw new Error(`slice ${this.slice}: parts missing from contributors ${this.missing().join(', ')}`);
    if (out.length !== this.to - this.from) throw new RangeError(`slice ${this.slice} has ${this.to - this.from} floats, out has ${out.length}`);
    const k = this.plan.k;
    combineNode(k, treeHeight(k), 0, this.blocks, out, this.scratch, nodeRounding(this.wire, this.numTrainable - this.from));
  }
}
