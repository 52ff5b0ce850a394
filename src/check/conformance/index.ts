// The conformance runner's core: one parsed fixture file in, a result per
// case out. Which checker runs is decided by the file's `name` (the files
// of test/fixtures/reference and any other set in the same format);
// trajectory cases (SGD, Adam) are recognised by their `batches` input.
import type { FixtureCase, FixtureFile } from '../fixture.js';
import { F32_TOL } from '../fixture.js';
import { CaseChecker, type CaseResult } from './result.js';
import {
  activationCase, batchNormCase, denseCase, gruCase, lossCase, lstmCase, metricsCase, regularizationCase,
} from './ops.js';
import { runTrajectoryCase } from './trajectory.js';
import { conv2dCase, pool2dCase } from './conv-ops.js';

export type { CaseResult } from './result.js';

export interface FileResult {
  file: string;
  cases: number;
  failed: number;
  worstRelErr: number;
  results: CaseResult[];
  /** Set when the file could not be read or parsed at all. */
  error?: string;
}

type CaseRunner = (c: FixtureCase, ck: CaseChecker) => void;

const RUNNERS: Record<string, CaseRunner> = {
  activations: activationCase,
  losses: lossCase,
  regularization: regularizationCase,
  dense: denseCase,
  batchnorm1d: batchNormCase,
  batchnorm2d: batchNormCase,
  lstm: lstmCase,
  gru: gruCase,
  metrics: metricsCase,
  conv2d: conv2dCase,
  pool2d: pool2dCase,
};

export interface Tolerance { rtol: number; atol: number }

export function runFixtureFile(fileLabel: string, fixture: FixtureFile, tol: Tolerance = F32_TOL): FileResult {
  const results: CaseResult[] = fixture.cases.map((c) => {
    try {
      if (c.inputs.batches !== undefined) return runTrajectoryCase(c, tol.rtol, tol.atol).result;
      const runner = RUNNERS[fixture.name];
      const ck = new CaseChecker(c.label, c.op, tol.rtol, tol.atol);
      if (runner === undefined) ck.fail(`no checker for fixture set '${fixture.name}' (known: ${Object.keys(RUNNERS).join(', ')}, and trajectories)`);
      else runner(c, ck);
      return ck.result;
    } catch (err) {
      const ck = new CaseChecker(c.label, c.op, tol.rtol, tol.atol);
      ck.fail(`threw: ${(err as Error).message}`);
      return ck.result;
    }
  });
  return {
    file: fileLabel,
    cases: results.length,
    failed: results.filter((r) => !r.passed).length,
    worstRelErr: results.reduce((m, r) => Math.max(m, r.worstRelErr), 0),
    results,
  };
}
