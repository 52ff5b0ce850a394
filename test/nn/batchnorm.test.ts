import { describe, expect, it } from 'vitest';
import type { FixtureCase } from '../../src/check/fixture.js';
import {
  batchNormEvalBackward, batchNormEvalForward, batchNormTrainBackward, batchNormTrainForward,
  createBatchNorm, runningUpdate, unbiasedVariance,
} from '../../src/nn/batchnorm.js';
import { loadFixture } from '../helpers/fixtures.js';
import { expectRunningStats, seedBatchNorm } from './batchnorm-harness.js';
import { bindLayer, EVAL, expectClose, expectGradCheck, f32, randn, runLayer, trainCtx, type Bound } from './layer-harness.js';

const fixture = loadFixture('batchnorm1d.json');

/** A bound layer loaded with a case's gamma, beta and running statistics. */
function fromCase(c: FixtureCase): { layer: ReturnType<typeof createBatchNorm>; b: Bound; N: number; F: number } {
  const [N, F] = c.inputs.x.shape;
  const layer = createBatchNorm(0, [F], { type: 'batchnorm', eps: c.config.eps as number, momentum: c.config.momentum as number });
  const b = bindLayer(layer);
  b.p.gamma.set(f32(c.params.gamma));
  b.p.beta.set(f32(c.params.beta));
  b.s.running_mean.set(f32(c.params.running_mean));
  b.s.running_var.set(f32(c.params.running_var));
  return { layer, b, N, F };
}

describe('batchnorm: training-mode fixtures (batchnorm1d.json)', () => {
  for (const c of fixture.cases.filter((k) => k.op === 'train')) {
    it(`layer: ${c.label}`, () => {
      const { layer, b, N } = fromCase(c);
      const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), trainCtx());
      expectClose(r.y, c.outputs.y, 'y');
      expectClose(r.dx!, c.grads!.x, 'dx');
      expectClose(r.g.gamma, c.grads!.gamma, 'dgamma');
      expectClose(r.g.beta, c.grads!.beta, 'dbeta');
      expectRunningStats(b, c, N);
    });

    it(`pure functions: ${c.label}`, () => {
      const [N, F] = c.inputs.x.shape;
      const eps = c.config.eps as number, m = c.config.momentum as number;
      const y = new Float32Array(N * F), xhat = new Float32Array(N * F);
      const mean = new Float64Array(F), varB = new Float64Array(F), rstd = new Float64Array(F), varU = new Float64Array(F);
      batchNormTrainForward(y, xhat, mean, varB, rstd, f32(c.inputs.x), f32(c.params.gamma), f32(c.params.beta), N, F, 1, eps);
      unbiasedVariance(varU, varB, N, F);
      expectClose(y, c.outputs.y, 'y');
      expectClose(xhat, c.outputs.x_hat, 'x_hat');
      expectClose(mean, c.outputs.batch_mean, 'batch_mean');
      expectClose(varB, c.outputs.batch_var_biased, 'batch_var_biased');
      expectClose(varU, c.outputs.batch_var_unbiased, 'batch_var_unbiased');
      const rm = new Float64Array(F), rv = new Float64Array(F);
      runningUpdate(rm, c.params.running_mean.data, mean, m, F);
      runningUpdate(rv, c.params.running_var.data, varU, m, F);
      expectClose(rm, c.outputs.running_mean_updated, 'running_mean_updated');
      expectClose(rv, c.outputs.running_var_updated, 'running_var_updated');
      const dx = new Float32Array(N * F), dgamma = new Float32Array(F), dbeta = new Float32Array(F);
      batchNormTrainBackward(dx, dgamma, dbeta, f32(c.upstream!.G), xhat, f32(c.params.gamma), rstd, N, F, 1);
      expectClose(dx, c.grads!.x, 'dx');
      expectClose(dgamma, c.grads!.gamma, 'dgamma');
      expectClose(dbeta, c.grads!.beta, 'dbeta');
    });
  }
});

describe('batchnorm: eval-mode fixtures (batchnorm1d.json)', () => {
  for (const c of fixture.cases.filter((k) => k.op === 'eval')) {
    it(`layer: ${c.label}`, () => {
      const { layer, b, N } = fromCase(c);
      const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), EVAL);
      expectClose(r.y, c.outputs.y, 'y');
      expectClose(r.dx!, c.grads!.x, 'dx');
      expectClose(r.g.gamma, c.grads!.gamma, 'dgamma');
      expectClose(r.g.beta, c.grads!.beta, 'dbeta');
      expect([...b.flatDs].every((v) => v === 0)).toBe(true); // eval leaves the statistics alone
    });

    it(`pure functions: ${c.label}`, () => {
      const [N, F] = c.inputs.x.shape;
      const y = new Float32Array(N * F), xhat = new Float32Array(N * F), rstd = new Float64Array(F);
      const gamma = f32(c.params.gamma);
      batchNormEvalForward(y, xhat, rstd, f32(c.inputs.x), gamma, f32(c.params.beta),
        c.params.running_mean.data, c.params.running_var.data, N, F, 1, c.config.eps as number);
      expectClose(y, c.outputs.y, 'y');
      const dx = new Float32Array(N * F), dgamma = new Float32Array(F), dbeta = new Float32Array(F);
      batchNormEvalBackward(dx, dgamma, dbeta, f32(c.upstream!.G), xhat, gamma, rstd, N, F, 1);
      expectClose(dx, c.grads!.x, 'dx');
      expectClose(dgamma, c.grads!.gamma, 'dgamma');
      expectClose(dbeta, c.grads!.beta, 'dbeta');
    });
  }
});

describe('batchnorm: finite differences', () => {
  const cases = [
    { name: 'train, batch 6 of [4]', inShape: [4], batch: 6, ctx: trainCtx() },
    { name: 'train, batch 2 of [3, 4] (rows = batch x time)', inShape: [3, 4], batch: 2, ctx: trainCtx() },
    { name: 'eval, batch 5 of [4]', inShape: [4], batch: 5, ctx: EVAL },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const layer = createBatchNorm(0, t.inShape, { type: 'batchnorm' });
      const b = bindLayer(layer);
      seedBatchNorm(b, 4);
      const n = t.batch * t.inShape.reduce((a, d) => a * d, 1);
      const x = randn(n, 5, 2, 1), G = randn(n, 6);
      const r = runLayer(layer, b, x, t.batch, G, t.ctx);
      expectGradCheck('dx', layer, x, t.batch, G, t.ctx, x, r.dx!);
      expectGradCheck('dgamma', layer, x, t.batch, G, t.ctx, b.p.gamma, r.g.gamma);
      expectGradCheck('dbeta', layer, x, t.batch, G, t.ctx, b.p.beta, r.g.beta);
    });
  }
});

describe('batchnorm: behaviour', () => {
  it('declares gamma, beta (no decay) and the running statistics', () => {
    const layer = createBatchNorm(1, [3, 5], { type: 'batchnorm', momentum: 0.2 });
    expect(layer.outShape).toEqual([3, 5]);
    expect(layer.params.map((q) => [q.name, q.shape, q.init, q.decay])).toEqual([['gamma', [5], 'ones', false], ['beta', [5], 'zeros', false]]);
    expect(layer.stats).toEqual([
      { name: 'running_mean', shape: [5], init: 'zeros', momentum: 0.2 },
      { name: 'running_var', shape: [5], init: 'ones', momentum: 0.2 },
    ]);
    expect(createBatchNorm(1, [5], { type: 'batchnorm' }).stats[0].momentum).toBe(0.1);
  });

  it('a [T, F] input is normalized over batch and time; statistics are weighted by samples', () => {
    const seq = createBatchNorm(0, [3, 4], { type: 'batchnorm' });
    const flat = createBatchNorm(0, [4], { type: 'batchnorm' });
    const bs = bindLayer(seq), bf = bindLayer(flat);
    const x = randn(24, 7), G = randn(24, 8);
    const rs = runLayer(seq, bs, x, 2, G, trainCtx());
    const rf = runLayer(flat, bf, x, 6, G, trainCtx());
    expect(rs.y).toEqual(rf.y);
    expect(rs.dx).toEqual(rf.dx);
    expect(rs.g.gamma).toEqual(rf.g.gamma);
    // flat: 6 samples * stat; sequence: 2 samples * the same stat.
    for (let f = 0; f < 4; f++) expect(bs.ds.running_mean[f]).toBeCloseTo(bf.ds.running_mean[f] / 3, 5);
  });

  it('a single row: x_hat = 0, y = beta, unbiased variance taken as 0, no NaN', () => {
    const layer = createBatchNorm(0, [3], { type: 'batchnorm' });
    const b = bindLayer(layer);
    b.p.beta.set([1, 2, 3]);
    const r = runLayer(layer, b, Float32Array.from([5, -1, 7]), 1, Float32Array.from([1, 1, 1]), trainCtx());
    expect([...r.y]).toEqual([1, 2, 3]);
    expect([...r.dx!]).toEqual([0, 0, 0]);
    expect([...b.ds.running_mean]).toEqual([5, -1, 7]);
    expect([...b.ds.running_var]).toEqual([0, 0, 0]);
  });

  it('backward accumulates into dgamma and dbeta; the statistics accumulate per forward', () => {
    const layer = createBatchNorm(0, [4], { type: 'batchnorm' });
    const b = bindLayer(layer);
    const x = randn(20, 1), G = randn(20, 2);
    const once = runLayer(layer, b, x, 5, G, trainCtx());
    layer.backward(G, 5, true);
    for (let f = 0; f < 4; f++) {
      expect(b.g.gamma[f]).toBeCloseTo(2 * once.g.gamma[f], 5);
      expect(b.g.beta[f]).toBeCloseTo(2 * once.g.beta[f], 5);
    }
    const ds1 = b.ds.running_mean.slice();
    layer.forward(x, 5, trainCtx());
    for (let f = 0; f < 4; f++) expect(b.ds.running_mean[f]).toBeCloseTo(2 * ds1[f], 5);
  });

  it('reuses its buffers for the same batch and stays right when the batch changes', () => {
    const layer = createBatchNorm(0, [4], { type: 'batchnorm' });
    bindLayer(layer);
    const x5 = randn(20, 3), x2 = randn(8, 4);
    const y = layer.forward(x5, 5, trainCtx());
    const dx = layer.backward(randn(20, 5), 5, true);
    expect(layer.forward(x5, 5, trainCtx())).toBe(y);
    expect(layer.backward(randn(20, 5), 5, true)).toBe(dx);
    layer.forward(randn(40, 6), 10, trainCtx());
    const small = layer.forward(x2, 2, trainCtx()).slice();
    const smallDx = layer.backward(randn(8, 7), 2, true)!.slice();
    const fresh = createBatchNorm(0, [4], { type: 'batchnorm' });
    bindLayer(fresh);
    expect(small).toEqual(fresh.forward(x2, 2, trainCtx()));
    expect(smallDx).toEqual(fresh.backward(randn(8, 7), 2, true));
  });

  it('shape errors name the layer', () => {
    expect(() => createBatchNorm(5, [], { type: 'batchnorm' })).toThrow('layers[5] (batchnorm): expected an input of rank >= 1, got []');
    expect(() => createBatchNorm(5, [2, 0, 3], { type: 'batchnorm' })).toThrow('layers[5] (batchnorm): input dims must be positive integers, got [2, 0, 3]');
    const layer = createBatchNorm(5, [4], { type: 'batchnorm' });
    bindLayer(layer);
    expect(() => layer.forward(new Float32Array(7), 2, trainCtx())).toThrow(/layers\[5\] \(batchnorm\): forward needs 8 floats/);
  });
});
