// Every case of losses.json (README section 4), through the registry:
// per-sample losses, mean, sum, and the gradients of the mean (scale 1/N)
// and of the sum (scale 1).
import { describe, expect, it } from 'vitest';
import { compareTensor, F32_TOL, toF32, type FixtureCase, type FixtureTensor } from '../../src/check/fixture.js';
import { FIXTURE_LOSS_OPS } from '../../src/losses/fixture-ops.js';
import { getLoss, LOSS_NAMES } from '../../src/losses/index.js';
import { loadFixture } from '../helpers/fixtures.js';

const file = loadFixture('losses.json');

function expectClose(what: string, actual: ArrayLike<number>, expected: FixtureTensor | ArrayLike<number>): void {
  const c = compareTensor(actual, expected, F32_TOL.rtol, F32_TOL.atol);
  expect(c.ok, `${what}: worst ratio ${c.worstRatio} at ${c.worstIndex}${c.lengthMismatch ? ` (lengths ${JSON.stringify(c.lengthMismatch)})` : ''}`).toBe(true);
}

function tensor(c: FixtureCase, group: 'inputs' | 'outputs' | 'grads' | 'grads_sum', name: string): FixtureTensor {
  const t = c[group]?.[name];
  if (!t) throw new Error(`case "${c.label}": no ${group}.${name}`);
  return t;
}

const runs = file.cases.flatMap((c) => {
  const bindings = FIXTURE_LOSS_OPS[c.op ?? ''];
  if (!bindings) throw new Error(`case "${c.label}": op ${c.op} has no binding in FIXTURE_LOSS_OPS`);
  return bindings.map((b) => ({ name: `${c.op} -> ${b.loss}: ${c.label}`, c, b }));
});

describe('losses.json', () => {
  it('has the expected cases, and every loss but soft_f1 is bound to a fixture op', () => {
    expect(file.cases.length).toBeGreaterThanOrEqual(30);
    const bound = new Set(Object.values(FIXTURE_LOSS_OPS).flat().map((b) => b.loss));
    for (const name of LOSS_NAMES) if (name !== 'soft_f1') expect(bound.has(name), name).toBe(true);
  });

  it.each(runs)('$name', ({ c, b }) => {
    const loss = getLoss(b.loss);
    const predT = tensor(c, 'inputs', b.pred);
    const N = predT.shape[0];
    const D = predT.shape.slice(1).reduce((a, x) => a * x, 1);
    const pred = toF32(predT);
    const target = toF32(tensor(c, 'inputs', b.target));
    expect(loss.targetSize(D) * N).toBe(target.length);

    // Mean reduction: scale 1/N.
    const dMean = new Float32Array(N * D).fill(NaN);
    const per = new Float64Array(N);
    const sumA = loss.forwardBackward(pred, target, N, D, dMean, 1 / N, per);
    expectClose('loss_per_sample', per, tensor(c, 'outputs', 'loss_per_sample'));
    expectClose('loss', [sumA / N], tensor(c, 'outputs', 'loss'));
    expectClose('loss_sum', [sumA], tensor(c, 'outputs', 'loss_sum'));
    expectClose(`grads.${b.pred}`, dMean, tensor(c, 'grads', b.pred));

    // Sum reduction: scale 1; dpred is overwritten, not accumulated.
    const dSum = new Float32Array(N * D).fill(123);
    const sumB = loss.forwardBackward(pred, target, N, D, dSum, 1);
    expect(sumB).toBe(sumA);
    expectClose(`grads_sum.${b.pred}`, dSum, tensor(c, 'grads_sum', b.pred));

    const all = c.outputs['loss_sum_all_elements'];
    if (all) expectClose('loss_sum_all_elements', [D * sumA], all);
  });
});
