// The collective's schedule for one step (NOTES-coll.md, "One step"): who
// computes which micro-shards, who owns which slice of the gradient vector,
// and what every contributor sends where. Pure: the coordinator's conductor
// builds it, every member checks the frames it receives against it, the
// simulator (bench/sim) moves its bytes.
//
// Contributors, in micro-shard order, tile [0, K) with contiguous ranges:
// the members (workers in the collective), each owning one slice, and at
// most one contributor that owns none (the coordinator, for the blocks its
// star workers computed: threads, tabs). A member may have an empty range
// (more members than micro-shards): it still owns and reduces a slice.
//
// Slices: the gradient vector [0, G) is cut into one slice per owner, equal,
// at multiples of SLICE_ALIGN floats (cache lines, SIMD width); the last
// slice takes the rest. Owner j's slice is the j-th owner's in range order.
// Reduce-scatter: contributor i sends owner j (j != i) the [from_j, to_j)
// slice of each aligned block of its range, in one `part`; all-gather:
// owner j sends its reduced slice to every other member and to the
// coordinator.
import { alignedBlocks, type TreeNode } from '../reduce/tree.js';
import type { GradWire } from '../reduce/bf16.js';

/** Slices start at multiples of this many floats (64 bytes). */
export const SLICE_ALIGN = 16;

/** Slice i of `parts` of a vector of `length` floats: [from, to), cut at multiples of SLICE_ALIGN. */
export function sliceBounds(length: number, parts: number, i: number): [number, number] {
  if (!(Number.isInteger(parts) && parts >= 1 && Number.isInteger(i) && i >= 0 && i < parts)) {
    throw new RangeError(`slice ${i} of ${parts}: expected 0 <= i < parts`);
  }
  const at = (j: number) => (j === parts ? length : Math.min(length, Math.floor((j * length) / parts / SLICE_ALIGN) * SLICE_ALIGN));
  return [at(i), at(i + 1)];
}

/** A contributor's micro-shards, and whether it owns a slice (members do; the coordinator does not). */
export interface ContributorRange {
  readonly start: number;
  readonly end: number;
  readonly owner: boolean;
}

export interface Contributor extends ContributorRange {
  /** The aligned blocks of [start, end) (none for an empty range). */
  readonly blocks: readonly TreeNode[];
  /** Its slice [from, to) of the gradient vector; -1 when it owns none. */
  readonly slice: number;
  readonly from: number;
  readonly to: number;
}

export interface CollectivePlan {
  readonly k: number;
  /** Floats in one gradient vector. */
  readonly gradLen: number;
  readonly contributors: readonly Contributor[];
  /** Contributor index of each slice's owner. */
  readonly owners: readonly number[];
}

/** What one contributor sends one owner in the reduce-scatter: the owner's slice of each of its blocks. */
export interface PartSend {
  readonly to: number;
  readonly slice: number;
  readonly blocks: readonly TreeNode[];
  readonly from: number;
  readonly end: number;
}

/**
 * The plan of a step whose contributors have these ranges (in micro-shard
 * order, tiling [0, k); at least one owner). Throws a RangeError naming the
 * first range that does not fit.
 */
export function planCollective(k: number, gradLen: number, ranges: readonly ContributorRange[]): CollectivePlan {
  if (!(Number.isInteger(gradLen) && gradLen >= 1)) throw new RangeError(`gradient length must be a positive integer, got ${gradLen}`);
  let at = 0;
  ranges.forEach((r, i) => {
    if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && r.start === at && r.end >= r.start && r.end <= k)) {
      throw new RangeError(`contributor ${i}: micro-shards [${r.start}, ${r.end}) do not follow [0, ${at}) inside [0, ${k})`);
    }
    if (!r.owner && r.end === r.start) throw new RangeError(`contributor ${i}: owns no slice and computes nothing`);
    at = r.end;
  });
  if (at !== k) throw new RangeError(`the contributors' ranges cover [0, ${at}), not [0, ${k})`);
  const owners: number[] = [];
  ranges.forEach((r, i) => { if (r.owner) owners.push(i); });
  if (owners.length === 0) throw new RangeError('no contributor owns a slice');
  const contributors = ranges.map((r, i): Contributor => {
    const slice = owners.indexOf(i);
    const [from, to] = slice < 0 ? [-1, -1] : sliceBounds(gradLen, owners.length, slice);
    return { ...r, blocks: r.end > r.start ? alignedBlocks(k, r.start, r.end) : [], slice, from, to };
  });
  return { k, gradLen, contributors, owners };
}

/** The parts contributor i sends in the reduce-scatter (none to itself; none from an empty range). */
export function partsOf(plan: CollectivePlan, i: number): PartSend[] {
  const c = plan.contributors[i];
  if (c.blocks.length === 0) return [];
  const sends: PartSend[] = [];
  plan.owners.forEach((o, slice) => {
    if (o === i) return;
    const owner = plan.contributors[o];
    sends.push({ to: o, slice, blocks: c.blocks, from: owner.from, end: owner.to });
  });
  return sends;
}

/** The contributors whose parts owner j (a slice index) waits for: every one with blocks but itself. */
export function sendersTo(plan: CollectivePlan, slice: number): number[] {
  const o = plan.owners[slice];
  return plan.contributors.flatMap((c, i) => (i !== o && c.blocks.length > 0 ? [i] : []));
}

/** Bytes of `vectors` vectors of the gradient elements [from, to) on a wire: bf16 below numTrainable, float32 above. */
export function vectorBytes(from: number, to: number, numTrainable: number, wire: GradWire, vectors = 1): number {
  const half = wire === 'bf16' ? Math.max(0, Math.min(to, numTrainable) - from) : 0;
  return vectors * (2 * half + 4 * (to - from - half));
}

export interface Traffic {
  /** Per contributor, payload bytes sent and received in one step (the coordinator's own row is in `coordinator`). */
  readonly contributors: readonly { out: number; in: number }[];
  /** The coordinator: the reduced slices in, plus the parts of its star blocks out when it contributes. */
  readonly coordinator: { out: number; in: number };
}

/**
 * The payload bytes of one step (no frame headers, no orders): parts,
 * reduced slices to the other members, and every reduced slice to the
 * coordinator. The non-owner contributor is the coordinator: its row is
 * counted in `coordinator` (and it receives nothing but the slices).
 */
export function stepTraffic(plan: CollectivePlan, numTrainable: number, wire: GradWire): Traffic {
  const rows = plan.contributors.map(() => ({ out: 0, in: 0 }));
  const coordinator = { out: 0, in: 0 };
  const rowOf = (i: number) => (plan.contributors[i].owner ? rows[i] : coordinator);
  plan.contributors.forEach((_, i) => {
    for (const p of partsOf(plan, i)) {
      const b = vectorBytes(p.from, p.end, numTrainable, wire, p.blocks.length);
      rowOf(i).out += b;
      rows[p.to].in += b;
    }
  });
  const members = plan.owners;
  for (const o of members) {
    const c = plan.contributors[o];
    const b = vectorBytes(c.from, c.to, numTrainable, wire);
    // To every other member, and to the coordinator.
    rows[o].out += b * members.length;
    for (const m of members) if (m !== o) rows[m].in += b;
    coordinator.in += b;
  }
  return { contributors: rows, coordinator };
}
