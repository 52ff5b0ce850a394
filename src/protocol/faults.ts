// The kinds of fault `--chaos` can make a worker carry out (parsed and
// scheduled in src/dispatch/chaos.ts, carried out by each worker shell). They
// are part of the protocol because a coordinator orders them over the wire.
//
//   crash       the worker dies in the middle of its range (a thread exits, a process exits)
//   throw       computing the range throws (the worker answers `failed`)
//   stall       the worker blocks for `ms` before it starts
//   garble      the worker answers with a malformed message
//   corrupt     the worker adds 1 to element `index` of its first partial sum: a WRONG answer
//   disconnect  a network worker closes its connection mid-range (a thread: exits, as crash)
export const FAULT_KINDS = ['crash', 'throw', 'stall', 'garble', 'corrupt', 'disconnect'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** What a worker sends instead of its answer for a `garble` fault: 64 bytes that are no frame. */
export function garbledFrame(taskId: number): Uint8Array {
  const junk = new Uint8Array(64);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 73 + taskId) & 0xff;
  return junk;
}
