// Checking untrusted answers (`--verify-fraction F`): which ranges are
// recomputed by a second worker, and how two answers are compared. Pure;
// the dispatcher (dispatcher.ts) runs the protocol:
//
//   1. A range answered by a process or a tab (threads are the coordinator's
//      own and trusted) is checked with probability F, drawn per range from
//      (key, step, start, end). The key is a secret the coordinator picks at
//      start and never sends: workers know the seed (dropout masks need it),
//      so a choice keyed by the seed alone could be predicted by a liar.
//   2. Its first valid answer becomes the candidate; the same range (same
//      micro-shards, hence the same aligned blocks) goes to a different
//      worker, a thread if one is idle (trusted, and it defeats two liars
//      who agree). With no other worker connected, the coordinator computes
//      it itself (the referee).
//   3. Equal bits: the candidate is taken. Different bits: the coordinator
//      recomputes the range itself, takes its own sums, and quarantines every
//      worker whose sums differ from them (the transport disconnects it and
//      refuses its address for the rest of the run).
//
// The bits of the run never depend on any of this: an accepted range is
// one the referee or two different workers computed identically.
import { uniform } from '../random/counter.js';

/** Whether the range [start, end) of 0-based step `step` is checked by a second worker. */
export function isChecked(fraction: number, key: number, step: number, start: number, end: number): boolean {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  return uniform(key >>> 0, step, start, end, 0x7e41f1) < fraction;
}

/** The first element whose bits differ between two answers of the same range, or null if they are identical. */
export function firstDifference(a: Float32Array, b: Float32Array, gradLen: number): { block: number; index: number } | null {
  if (a.length !== b.length) return { block: 0, index: Math.min(a.length, b.length) };
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) return { block: Math.floor(i / gradLen), index: i % gradLen };
  }
  return null;
}

/**
 * The chance that a worker which tampers with m of its ranges is never
 * caught: each tampered range is checked independently with probability F.
 */
export function undetectedProbability(fraction: number, tamperedRanges: number): number {
  return Math.pow(1 - Math.min(1, Math.max(0, fraction)), tamperedRanges);
}
