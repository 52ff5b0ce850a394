// Shared by the batchnorm tests (last axis and channels): seeded parameters
// and statistics, and the check of a training step's statistic accumulators
// against a fixture case's running statistics.
import type { FixtureCase } from '../../src/check/fixture.js';
import { runningUpdate } from '../../src/nn/batchnorm.js';
import { expectClose, randn, type Bound } from './layer-harness.js';

/** gamma in [0.5, 1.5]-ish, beta, running mean and a positive running variance, from fixed streams. */
export function seedBatchNorm(b: Bound, C: number, stream = 1): void {
  b.p.gamma.set(randn(C, stream, 0.5, 1));
  b.p.beta.set(randn(C, stream + 1));
  b.s.running_mean.set(randn(C, stream + 2));
  b.s.running_var.set(randn(C, stream + 3, 0.3, 1.5));
}

/**
 * The accumulators of one training forward over N samples hold N * statistic;
 * the trainer's rule s = (1 - m) s + m ds / N then gives the case's running statistics.
 */
export function expectRunningStats(b: Bound, c: FixtureCase, N: number): void {
  const C = b.s.running_mean.length;
  const m = c.config.momentum as number;
  const mean = Float64Array.from(b.ds.running_mean, (v) => v / N);
  const varU = Float64Array.from(b.ds.running_var, (v) => v / N);
  expectClose(mean, c.outputs.batch_mean, 'ds mean / N');
  expectClose(varU, c.outputs.batch_var_unbiased, 'ds var / N');
  const rm = new Float64Array(C), rv = new Float64Array(C);
  runningUpdate(rm, b.s.running_mean, mean, m, C);
  runningUpdate(rv, b.s.running_var, varU, m, C);
  expectClose(rm, c.outputs.running_mean_updated, 'running_mean_updated');
  expectClose(rv, c.outputs.running_var_updated, 'running_var_updated');
}
