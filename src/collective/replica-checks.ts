// The replica check (docs/collective.md, "Drift"): every checkEvery
// steps each member sends the hash of its whole replica (weights, then
// optimizer state) after applying the step, and the coordinator its own;
// a member whose hash differs is out of sync. The two hashes come in any
// order; a check is decided once the coordinator's is there.
export class ReplicaChecks {
  private readonly checks = new Map<number, { mine: string | null; theirs: Map<string, string> }>();

  constructor(private readonly every: number, private readonly drifted: (id: string, reason: string) => void) {}

  /** Whether the replicas are checked after step `step`. */
  isChecked(step: number): boolean {
    return this.every > 0 && (step + 1) % this.every === 0;
  }

  /** A checked step is ordered: its hashes will come. */
  expect(step: number): void {
    if (this.isChecked(step) && !this.checks.has(step)) this.checks.set(step, { mine: null, theirs: new Map() });
  }

  theirs(id: string, step: number, hash: string): void {
    const check = this.checks.get(step);
    if (check === undefined) return; // not a checked step, or long settled
    check.theirs.set(id, hash);
    this.compare(step);
  }

  mine(step: number, hash: string): void {
    const check = this.checks.get(step);
    if (check === undefined) return;
    check.mine = hash;
    this.compare(step);
  }

  private compare(step: number): void {
    const check = this.checks.get(step)!;
    if (check.mine === null) return;
    for (const [id, hash] of check.theirs) {
      if (hash !== check.mine) this.drifted(id, `its replica after step ${step + 1} hashes to ${hash.slice(0, 12)}, the coordinator's to ${check.mine.slice(0, 12)}`);
    }
    check.theirs.clear();
    // Older checks are over: a member that never answered one is caught at the next.
    for (const s of [...this.checks.keys()]) if (s < step) this.checks.delete(s);
  }
}
