// What `--chaos` makes a member do wrong on purpose (tests and
// demonstrations; the kinds are src/dispatch/chaos.ts's): a `corrupt` fault
// sends one peer a reduced slice with one value changed, finite and well
// formed, which only the commit's hash can tell from the right one.
import type { Reduced } from '../protocol/collective-messages.js';

/** The slice with element `index` (modulo its length) one larger. */
export function corrupted(msg: Reduced, index: number): Reduced {
  const wrong = msg.sums.slice();
  if (wrong.length > 0) wrong[index % wrong.length] += 1;
  return { ...msg, sums: wrong };
}
