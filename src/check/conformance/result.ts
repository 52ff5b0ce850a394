// What the conformance runner reports per case and per file.
import { compareTensor, type Comparison, type FixtureTensor } from '../fixture.js';

export interface CaseResult {
  label: string;
  op?: string;
  passed: boolean;
  /** Worst relative error over every compared value. */
  worstRelErr: number;
  /** What failed, e.g. `grads.x: worst ratio 3.2 at index 17`. */
  failures: string[];
  /** Values compared. */
  compared: number;
}

/** Accumulates comparisons for one case. */
export class CaseChecker {
  readonly result: CaseResult;
  constructor(label: string, op: string | undefined, private readonly rtol: number, private readonly atol: number) {
    this.result = { label, op, passed: true, worstRelErr: 0, failures: [], compared: 0 };
  }

  check(what: string, actual: ArrayLike<number>, expected: FixtureTensor | ArrayLike<number>): Comparison {
    const c = compareTensor(actual, expected, this.rtol, this.atol);
    this.result.compared += actual.length;
    if (c.lengthMismatch) {
      this.fail(`${what}: ${c.lengthMismatch.actual} values, expected ${c.lengthMismatch.expected}`);
    } else {
      this.result.worstRelErr = Math.max(this.result.worstRelErr, c.worstRelErr);
      if (!c.ok) {
        const e = 'data' in expected ? (expected).data : expected;
        this.fail(`${what}: worst ratio ${c.worstRatio.toPrecision(3)} at index ${c.worstIndex} (got ${actual[c.worstIndex]}, expected ${e[c.worstIndex]})`);
      }
    }
    return c;
  }

  fail(message: string): void {
    this.result.passed = false;
    this.result.failures.push(message);
  }
}
