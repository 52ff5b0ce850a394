// "Did you mean": the known name closest to a misspelt one, for messages
// about unknown config fields and values (`unknown field "epoch"; did you
// mean "epochs"?`). Close means an edit distance (insertions, deletions,
// substitutions, transpositions of neighbours: the optimal string alignment
// distance) of at most a third of the longer name, at least 1, ignoring case.

/** The optimal string alignment distance between a and b (Damerau-Levenshtein without repeated edits of a substring). */
export function editDistance(a: string, b: string): number {
  const n = a.length, m = b.length;
  // d[i][j]: distance between a[0..i) and b[0..j), kept as three rolling rows.
  let prev2 = new Array<number>(m + 1).fill(0);
  let prev = Array.from({ length: m + 1 }, (_, j) => j);
  for (let i = 1; i <= n; i++) {
    const row = new Array<number>(m + 1);
    row[0] = i;
    for (let j = 1; j <= m; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], prev2[j - 2] + 1);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[m];
}

/** The candidate closest to `given` within the threshold (the first of equals), or null. */
export function closestName(given: string, candidates: Iterable<string>): string | null {
  const g = given.toLowerCase();
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (c === given) continue;
    const d = editDistance(g, c.toLowerCase());
    const limit = Math.max(1, Math.floor(Math.max(g.length, c.length) / 3));
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** `; did you mean "x"?` for the closest candidate, or ''. */
export function didYouMean(given: string, candidates: Iterable<string>): string {
  const c = closestName(given, candidates);
  return c === null ? '' : `; did you mean "${c}"?`;
}
