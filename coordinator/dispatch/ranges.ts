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
