// The frames a member keeps for steps it has not been ordered yet: a faster
// peer's parts and slices, and those that come before its replica (the
// coordinator sends the replicas one after the other, and a member that has
// its own can already be sending). Bounded: a frame for a step more than
// MAX_STEPS_AHEAD past the replica's, or past EARLY_VECTORS gradient
// vectors' worth of floats in all, is refused (its sender is then
// reported): no honest peer is that far ahead.
import type { Part, Reduced } from '../protocol/collective-messages.js';

/** A frame for a step this far past the replica's is refused. */
export const MAX_STEPS_AHEAD = 1000;
/** At most this many gradient vectors' worth of floats are kept. */
export const EARLY_VECTORS = 16;

export interface KeptFrame {
  readonly from: string;
  readonly message: Part | Reduced;
}

export class EarlyFrames {
  private frames: KeptFrame[] = [];
  private floats = 0;

  constructor(private readonly gradLen: number) {}

  /** Keeps a frame; returns why it cannot be kept, or null. `applied`: the last step the replica holds. */
  keep(from: string, m: Part | Reduced, applied: number): string | null {
    if (m.step > applied + 1 + MAX_STEPS_AHEAD || this.floats + m.sums.length > EARLY_VECTORS * this.gradLen) {
      return `sent a ${m.type === 'part' ? 'part' : 'reduced slice'} of step ${m.step + 1} attempt ${m.attempt}, far ahead`;
    }
    this.frames.push({ from, message: m });
    this.floats += m.sums.length;
    return null;
  }

  /** Every frame kept, taken out. */
  drain(): KeptFrame[] {
    const frames = this.frames;
    this.frames = [];
    this.floats = 0;
    return frames;
  }
}
