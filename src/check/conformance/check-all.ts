// Helpers of the per-operation checkers (ops.ts, conv-ops.ts).
import type { FixtureTensor } from '../fixture.js';
import type { CaseChecker } from './result.js';

/** The tensor `key` of a case's map, or an error naming it. */
export function need(map: Record<string, FixtureTensor> | undefined, key: string, where: string): FixtureTensor {
  const t = map?.[key];
  if (t === undefined) throw new Error(`${where}.${key} is missing`);
  return t;
}

/** Compare every tensor of `expected` that `actual` has; a key we cannot produce fails. */
export function checkAll(ck: CaseChecker, where: string, expected: Record<string, FixtureTensor> | undefined, actual: Record<string, ArrayLike<number>>): void {
  for (const [key, t] of Object.entries(expected ?? {})) {
    const a = actual[key];
    if (a === undefined) ck.fail(`${where}.${key}: not produced by the core`);
    else ck.check(`${where}.${key}`, a, t);
  }
}
