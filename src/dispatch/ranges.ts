// Cutting a step's micro-shards into one contiguous range per worker,
// proportional to the workers' measured speeds (dispatcher.ts uses it).
// Who computes which range never changes a bit: the partial sums are
// combined in the fixed tree order (src/reduce/tree.ts).

export interface SlotRange {
  /** Logical slot (what --chaos calls worker). */
  readonly slot: number;
  /** Micro-shards [start, end). */
  readonly start: number;
  readonly end: number;
}

/**
 * Contiguous ranges tiling [0, k), one per slot with a positive share, in
 * slot order, sizes proportional to `weights` (rounded at the cumulative
 * boundaries). Slots whose share rounds to nothing get no range.
 */
export function splitRanges(k: number, weights: readonly number[]): SlotRange[] {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`micro-shard count must be a positive integer, got ${k}`);
  if (weights.length === 0) throw new RangeError('no worker slots');
  const total = weights.reduce((a, w) => a + Math.max(0, w), 0);
  const share = total > 0 ? weights.map((w) => Math.max(0, w) / total) : weights.map(() => 1 / weights.length);
  const ranges: SlotRange[] = [];
  let cumulative = 0;
  let start = 0;
  for (let slot = 0; slot < share.length; slot++) {
    cumulative += share[slot];
    const end = slot === share.length - 1 ? k : Math.min(k, Math.round(cumulative * k));
    if (end > start) {
      ranges.push({ slot, start, end });
      start = end;
    }
  }
  return ranges;
}

/** "0-3" for micro-shards [0, 4), "5" for [5, 6). */
export function shardLabel(r: { start: number; end: number }): string {
  return r.end - r.start === 1 ? `${r.start}` : `${r.start}-${r.end - 1}`;
}

/** Trailing zero bits of a positive integer: how aligned a cut at c is in the reduction tree. */
function alignment(c: number): number {
  let z = 0;
  while (c % 2 === 0 && z < 30) { c /= 2; z++; }
  return z;
}

/** How far (in average shares) a cut may move to a more aligned micro-shard: fewer partial sums to send and combine. */
export const CUT_TOLERANCE = 0.15;

/**
 * splitRanges over micro-shards [start, end), with each cut moved, by at
 * most `tolerance` of an average share, to the most aligned position in
 * the reduction tree. A cut on a multiple of 2^j keeps whole subtrees of
 * 2^j micro-shards on one side, so the ranges have fewer aligned blocks,
 * and the workers send fewer partial sums (each is a whole gradient
 * vector): two equal workers over K = 16 send one block each instead of
 * up to four when noisy speed estimates put the cut at 7 or 9. Returned
 * ranges are absolute ([start, end) coordinates), slots as in splitRanges.
 */
export function alignedSplit(start: number, end: number, weights: readonly number[], tolerance: number): SlotRange[] {
  const plain = splitRanges(end - start, weights).map((r) => ({ ...r, start: r.start + start, end: r.end + start }));
  if (plain.length <= 1 || tolerance <= 0) return plain;
  const slack = (tolerance * (end - start)) / plain.length;
  const cuts = plain.slice(1).map((r) => r.start);
  for (let i = 0; i < cuts.length; i++) {
    const lo = Math.max(i === 0 ? start + 1 : cuts[i - 1] + 1, Math.ceil(cuts[i] - slack));
    const hi = Math.min(i === cuts.length - 1 ? end - 1 : cuts[i + 1] - 1, Math.floor(cuts[i] + slack));
    let best = cuts[i];
    for (let c = lo; c <= hi; c++) {
      const better = alignment(c) > alignment(best) || (alignment(c) === alignment(best) && Math.abs(c - cuts[i]) < Math.abs(best - cuts[i]));
      if (better) best = c;
    }
    cuts[i] = best;
  }
  return plain.map((r, i) => ({ slot: r.slot, start: i === 0 ? start : cuts[i - 1], end: i === plain.length - 1 ? end : cuts[i] }));
}
