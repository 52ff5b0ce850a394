// Weight decay applies to some parameters and not to others (the model's
// decay mask: weights yes, biases no). The optimizers' vector kernels take
// one flag per call, so an update runs over the mask's runs of equal value.
// The runs are computed once per mask (it is fixed for a model).

const cache = new WeakMap<Uint8Array, Int32Array>();

/** The bounds of the runs of equal mask value: run r is [runs[r], runs[r + 1]). */
export function decayRuns(mask: Uint8Array): Int32Array {
  let runs = cache.get(mask);
  if (runs === undefined) {
    const bounds = [0];
    for (let i = 1; i < mask.length; i++) if (mask[i] !== mask[i - 1]) bounds.push(i);
    bounds.push(mask.length);
    runs = Int32Array.from(bounds);
    cache.set(mask, runs);
  }
  return runs;
}

/**
 * Calls update(a, b, decay) for consecutive pieces [a, b) that cover
 * [from, to) in order, decay the mask's value there (true everywhere
 * without a mask; false past the mask's end).
 */
export function forDecayRuns(
  mask: Uint8Array | undefined, from: number, to: number, update: (a: number, b: number, decay: boolean) => void,
): void {
  if (from >= to) return;
  if (mask === undefined) {
    update(from, to, true);
    return;
  }
  const runs = decayRuns(mask);
  for (let r = 0; r + 1 < runs.length && runs[r] < to; r++) {
    const a = Math.max(runs[r], from), b = Math.min(runs[r + 1], to);
    if (a < b) update(a, b, mask[runs[r]] === 1);
  }
  const covered = runs[runs.length - 1];
  if (covered < to) update(Math.max(covered, from), to, false);
}
