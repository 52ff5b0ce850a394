// Deterministic fault injection: `--chaos SPEC` (or the config's `chaos`).
//
// A SPEC is a `;`-separated list of faults, each `KIND:key=value,...`:
//
//   crash:worker=1,step=30              the thread exits (process.exit) in the middle of its range
//   throw:worker=0,step=7               the task throws in the middle of its range
//   stall:worker=0,step=50,ms=2000      the thread blocks for ms before it starts (Atomics.wait)
//   garble:worker=0,step=5              the thread answers with a malformed reply
//   corrupt:worker=0,step=3,index=123   the thread adds 1 to element `index` (default 0) of its
//                                       first partial sum: a deliberately WRONG worker, for
//                                       checking that `dptrain verify` catches a bad reduction
//   disconnect:worker=1,step=9          a network worker closes its connection mid-range (a thread
//                                       exits, as crash)
//
// `worker` is the logical slot of the range assignment (0..workers-1: slot w
// gets the w-th contiguous range of micro-shards), `step` counts from 1 as
// the progress lines do. A fault fires on the first attempt of that slot's
// range at that step only, so a reassigned range runs clean: every fault but
// `corrupt` leaves the final weights unchanged (docs/design.md principle 8).
// Pure: parsed and validated here, carried out by node/threads/thread-entry.ts and the worker session (worker/session/).

import { FAULT_KINDS, type FaultKind } from '../protocol/faults.js';

export { FAULT_KINDS, type FaultKind };

export interface Fault {
  kind: FaultKind;
  worker: number;
  /** 1-based step number. */
  step: number;
  /** stall: how long the thread blocks. */
  ms?: number;
  /** corrupt: which element of the first partial sum. */
  index?: number;
}

const KEYS: Record<FaultKind, { required: string[]; optional: string[] }> = {
  crash: { required: ['worker', 'step'], optional: [] },
  throw: { required: ['worker', 'step'], optional: [] },
  stall: { required: ['worker', 'step', 'ms'], optional: [] },
  garble: { required: ['worker', 'step'], optional: [] },
  corrupt: { required: ['worker', 'step'], optional: ['index'] },
  disconnect: { required: ['worker', 'step'], optional: [] },
};

/** Parses a chaos SPEC; throws an Error whose message names the bad part. */
export function parseChaos(spec: string): Fault[] {
  const faults: Fault[] = [];
  for (const raw of spec.split(';')) {
    const part = raw.trim();
    if (part === '') continue;
    const colon = part.indexOf(':');
    const kind = (colon < 0 ? part : part.slice(0, colon)).trim();
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) {
      throw new Error(`"${part}": unknown fault kind "${kind}" (expected one of ${FAULT_KINDS.join(', ')})`);
    }
    const allowed = KEYS[kind as FaultKind];
    const values = new Map<string, number>();
    const body = colon < 0 ? '' : part.slice(colon + 1);
    for (const kv of body.split(',')) {
      if (kv.trim() === '') continue;
      const eq = kv.indexOf('=');
      const key = (eq < 0 ? kv : kv.slice(0, eq)).trim();
      const value = eq < 0 ? '' : kv.slice(eq + 1).trim();
      if (!allowed.required.includes(key) && !allowed.optional.includes(key)) {
        throw new Error(`"${part}": unknown key "${key}" for ${kind} (expected ${[...allowed.required, ...allowed.optional].join(', ')})`);
      }
      if (!/^\d+$/.test(value)) throw new Error(`"${part}": ${key} must be a whole number, got "${value}"`);
      if (values.has(key)) throw new Error(`"${part}": ${key} given twice`);
      values.set(key, Number(value));
    }
    for (const key of allowed.required) {
      if (!values.has(key)) throw new Error(`"${part}": ${kind} needs ${key}=N`);
    }
    const fault: Fault = { kind: kind as FaultKind, worker: values.get('worker')!, step: values.get('step')! };
    if (fault.step < 1) throw new Error(`"${part}": step counts from 1`);
    if (values.has('ms')) fault.ms = values.get('ms')!;
    if (values.has('index')) fault.index = values.get('index')!;
    faults.push(fault);
  }
  return faults;
}

/** The fault for slot `worker` at 1-based `step`, if any (the first one listed wins). */
export function faultFor(faults: readonly Fault[], step: number, worker: number): Fault | undefined {
  return faults.find((f) => f.step === step && f.worker === worker);
}

/** Checks the faults against the worker count; returns a message naming the problem, or null. */
export function checkChaosWorkers(faults: readonly Fault[], workers: number): string | null {
  if (faults.length === 0) return null;
  if (workers === 0) return 'faults are injected into worker threads: use --workers 1 or more';
  const bad = faults.find((f) => f.worker >= workers);
  if (bad !== undefined) return `${bad.kind} names worker=${bad.worker}, but there are only ${workers} worker slots (0..${workers - 1})`;
  return null;
}
