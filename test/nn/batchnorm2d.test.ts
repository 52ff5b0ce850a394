// Batch normalization over channels (PyTorch's BatchNorm2d, and BatchNorm1d
// on [N, C, L]) against batchnorm2d.json, finite differences, and the rule
// that picks the axis; flat and sequence inputs keep the bits they had
// before the layer learned channels (pinned below).
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FixtureCase } from '../../src/check/fixture.js';
import {
  batchNormAxis, batchNormEvalBackward, batchNormEvalForward, batchNormTrainBackward, batchNormTrainForward,
  createBatchNorm, unbiasedVariance,
} from '../../src/nn/batchnorm.js';
import type { Layer } from '../../src/nn/layer.js';
import type { BatchNormSpec } from '../../src/model/spec.js';
import { loadFixture } from '../helpers/fixtures.js';
import { expectRunningStats, seedBatchNorm } from './batchnorm-harness.js';
import { bindLayer, EVAL, expectClose, expectGradCheck, f32, randn, runLayer, trainCtx } from './layer-harness.js';

const fixture = loadFixture('batchnorm2d.json');
const opCases = fixture.cases.filter((c) => c.op === 'train' || c.op === 'eval');

/** The layer of a case: x [N, C, H, W] is N samples of [C, H, W]; x [N, C, L] of [C, L] with the channels axis. */
function fromCase(c: FixtureCase) {
  const [N, C, ...rest] = c.inputs.x.shape;
  const inShape = [C, ...rest];
  const spec: BatchNormSpec = { type: 'batchnorm', eps: c.config.eps as number, momentum: c.config.momentum as number };
  const layer = createBatchNorm(0, inShape, rest.length === 1 ? { ...spec, axis: 'channels' } : spec);
  const b = bindLayer(layer);
  b.p.gamma.set(f32(c.params.gamma));
  b.p.beta.set(f32(c.params.beta));
  b.s.running_mean.set(f32(c.params.running_mean));
  b.s.running_var.set(f32(c.params.running_var));
  return { layer, b, N, C, S: rest.reduce((a, d) => a * d, 1) };
}

describe('batchnorm over channels: batchnorm2d.json', () => {
  for (const c of opCases) {
    it(`layer: ${c.label}`, () => {
      const { layer, b, N } = fromCase(c);
      const training = c.op === 'train';
      const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), training ? trainCtx() : EVAL);
      expectClose(r.y, c.outputs.y, 'y');
      expectClose(r.dx!, c.grads!.x, 'dx');
      expectClose(r.g.gamma, c.grads!.gamma, 'dgamma');
      expectClose(r.g.beta, c.grads!.beta, 'dbeta');
      if (!training) {
        expect([...b.flatDs].every((v) => v === 0)).toBe(true); // eval leaves the statistics alone
        return;
      }
      expectRunningStats(b, c, N);
    });

    it(`pure functions: ${c.label}`, () => {
      const { N, C, S } = fromCase(c);
      const eps = c.config.eps as number;
      const x = f32(c.inputs.x), G = f32(c.upstream!.G), gamma = f32(c.params.gamma), beta = f32(c.params.beta);
      const y = new Float32Array(x.length), xhat = new Float32Array(x.length), dx = new Float32Array(x.length);
      const rstd = new Float64Array(C), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
      if (c.op === 'train') {
        const mean = new Float64Array(C), varB = new Float64Array(C), varU = new Float64Array(C);
        batchNormTrainForward(y, xhat, mean, varB, rstd, x, gamma, beta, N, C, S, eps);
        unbiasedVariance(varU, varB, N * S, C);
        expectClose(xhat, c.outputs.x_hat, 'x_hat');
        expectClose(mean, c.outputs.batch_mean, 'batch_mean');
        expectClose(varB, c.outputs.batch_var_biased, 'batch_var_biased');
        expectClose(varU, c.outputs.batch_var_unbiased, 'batch_var_unbiased');
        batchNormTrainBackward(dx, dgamma, dbeta, G, xhat, gamma, rstd, N, C, S);
      } else {
        batchNormEvalForward(y, xhat, rstd, x, gamma, beta, c.params.running_mean.data, c.params.running_var.data, N, C, S, eps);
        batchNormEvalBackward(dx, dgamma, dbeta, G, xhat, gamma, rstd, N, C, S);
      }
      expectClose(y, c.outputs.y, 'y');
      expectClose(dx, c.grads!.x, 'dx');
      expectClose(dgamma, c.grads!.gamma, 'dgamma');
      expectClose(dbeta, c.grads!.beta, 'dbeta');
    });
  }

  it('covers one channel, many channels, one sample and both modes', () => {
    const channels = opCases.map((c) => c.inputs.x.shape[1]);
    expect(channels).toContain(1);
    expect(Math.max(...channels)).toBeGreaterThanOrEqual(32);
    expect(opCases.some((c) => c.inputs.x.shape[0] === 1)).toBe(true);
    expect(new Set(opCases.map((c) => c.op))).toEqual(new Set(['train', 'eval']));
  });
});

describe('batchnorm over channels: finite differences', () => {
  const cases: { name: string; inShape: number[]; batch: number; spec: BatchNormSpec; training: boolean }[] = [
    { name: 'train, batch 3 of [4, 3, 5]', inShape: [4, 3, 5], batch: 3, spec: { type: 'batchnorm' }, training: true },
    { name: 'train, one sample of [2, 4, 4]', inShape: [2, 4, 4], batch: 1, spec: { type: 'batchnorm' }, training: true },
    { name: 'eval, batch 2 of [3, 4, 4]', inShape: [3, 4, 4], batch: 2, spec: { type: 'batchnorm' }, training: false },
    { name: 'train, batch 2 of a sequence [3, 5] on its channels', inShape: [3, 5], batch: 2, spec: { type: 'batchnorm', axis: 'channels' }, training: true },
    { name: 'train, batch 2 of [2, 3, 4] on its last axis', inShape: [2, 3, 4], batch: 2, spec: { type: 'batchnorm', axis: 'last' }, training: true },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const layer = createBatchNorm(0, t.inShape, t.spec);
      const b = bindLayer(layer);
      seedBatchNorm(b, layer.params[0].shape[0]);
      const n = t.batch * t.inShape.reduce((a, d) => a * d, 1);
      const x = randn(n, 5, 2, 1), G = randn(n, 6);
      const ctx = t.training ? trainCtx() : EVAL;
      const r = runLayer(layer, b, x, t.batch, G, ctx);
      expectGradCheck('dx', layer, x, t.batch, G, ctx, x, r.dx!);
      expectGradCheck('dgamma', layer, x, t.batch, G, ctx, b.p.gamma, r.g.gamma);
      expectGradCheck('dbeta', layer, x, t.batch, G, ctx, b.p.beta, r.g.beta);
    });
  }
});

/** sha256 of everything a batchnorm layer writes for a fixed input: train and eval forward and backward, gradients, statistics. */
function layerBits(layer: Layer, inShape: number[], batch: number): string {
  const b = bindLayer(layer);
  seedBatchNorm(b, layer.params[0].shape[0], 11);
  const n = batch * inShape.reduce((a, d) => a * d, 1);
  const x = randn(n, 15, 3, 0.7), G = randn(n, 16);
  const h = createHash('sha256');
  const add = (a: Float32Array) => h.update(new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
  for (const ctx of [trainCtx(), EVAL]) {
    add(layer.forward(x, batch, ctx).slice());
    add(layer.backward(G, batch, true)!.slice());
  }
  add(b.flatG);
  add(b.flatDs);
  return h.digest('hex');
}

describe('batchnorm: which axis', () => {
  it('an image [C, H, W] is normalized per channel, flat and sequence inputs on their last axis; a spec says otherwise with axis', () => {
    expect(batchNormAxis([8], { type: 'batchnorm' })).toBe('last');
    expect(batchNormAxis([28, 28], { type: 'batchnorm' })).toBe('last');
    expect(batchNormAxis([8, 12, 12], { type: 'batchnorm' })).toBe('channels');
    expect(batchNormAxis([8, 12, 12], { type: 'batchnorm', axis: 'last' })).toBe('last');
    expect(batchNormAxis([28, 28], { type: 'batchnorm', axis: 'channels' })).toBe('channels');
    const image = createBatchNorm(2, [8, 12, 10], { type: 'batchnorm', momentum: 0.2 });
    expect(image.outShape).toEqual([8, 12, 10]);
    expect(image.params.map((q) => [q.name, q.shape, q.init, q.decay])).toEqual([['gamma', [8], 'ones', false], ['beta', [8], 'zeros', false]]);
    expect(image.stats).toEqual([
      { name: 'running_mean', shape: [8], init: 'zeros', momentum: 0.2 },
      { name: 'running_var', shape: [8], init: 'ones', momentum: 0.2 },
    ]);
    expect(createBatchNorm(2, [8, 12, 10], { type: 'batchnorm', axis: 'last' }).params[0].shape).toEqual([10]);
    expect(createBatchNorm(2, [5, 7], { type: 'batchnorm', axis: 'channels' }).params[0].shape).toEqual([5]);
  });

  it('flat and sequence inputs keep their bits (pinned from the layer before it knew channels)', () => {
    const pins: [number[], number, string][] = [
      [[6], 5, '01d80ea4bf6ef8f6bbc092e3cbe223387b33cf8d71a4cbe6b9a0e2c1e838aed8'],
      [[3, 4], 2, '4bab3d99bee0f1eb5dd0a5018e97041be00343c2613bfad75848dfb684537853'],
      [[256], 8, '6a85698857aa6ccc0eb2ec85947d1893c32e3d3c3c2ab472836837b450f0bfdb'],
      [[7, 5], 3, '8617f93a5243f18e1ca19005abb0f089681cdd1daf8f13574fb08bef4e958107'],
    ];
    for (const [shape, batch, sha] of pins) expect(layerBits(createBatchNorm(0, shape, { type: 'batchnorm' }), shape, batch), `${shape}`).toBe(sha);
  });

  it('axis last on an image is the last-axis layer of the image seen as rows; channels on a sequence is the image layer of [T, F, 1]', () => {
    const x = randn(2 * 3 * 4 * 5, 7), G = randn(2 * 3 * 4 * 5, 8);
    const last = createBatchNorm(0, [3, 4, 5], { type: 'batchnorm', axis: 'last' });
    const rows = createBatchNorm(0, [12, 5], { type: 'batchnorm' });
    const a = runLayer(last, bindLayer(last), x, 2, G, trainCtx()), b = runLayer(rows, bindLayer(rows), x, 2, G, trainCtx());
    expect(a.y).toEqual(b.y);
    expect(a.dx).toEqual(b.dx);
    expect(a.g.gamma).toEqual(b.g.gamma);
    const seq = createBatchNorm(0, [3, 20], { type: 'batchnorm', axis: 'channels' });
    const img = createBatchNorm(0, [3, 20, 1], { type: 'batchnorm' });
    const bs = bindLayer(seq), bi = bindLayer(img);
    const c = runLayer(seq, bs, x, 2, G, trainCtx()), d = runLayer(img, bi, x, 2, G, trainCtx());
    expect(c.y).toEqual(d.y);
    expect(c.dx).toEqual(d.dx);
    expect(bs.flatDs).toEqual(bi.flatDs);
  });

  it('an image\'s statistics are per channel over samples and positions, weighted by samples; one sample has a spread', () => {
    const layer = createBatchNorm(0, [2, 3, 3], { type: 'batchnorm' });
    const b = bindLayer(layer);
    // Sample 0: channel 0 holds 0..8, channel 1 all 5; sample 1: channel 0 holds 9..17, channel 1 all -1.
    const x = new Float32Array(36);
    for (let i = 0; i < 9; i++) { x[i] = i; x[9 + i] = 5; x[18 + i] = 9 + i; x[27 + i] = -1; }
    layer.forward(x, 2, trainCtx());
    expect([...b.ds.running_mean]).toEqual([2 * 8.5, 2 * 2]); // 2 samples * mean
    expect(b.ds.running_var[0]).toBeCloseTo((2 * (18 * 18 - 1)) / 12 * (18 / 17), 4); // 2 * unbiased variance of 0..17
    expect(b.ds.running_var[1]).toBeCloseTo(2 * ((18 * 9) / 17), 4); // values +-3 around 2
    b.flatDs.fill(0);
    layer.forward(x.subarray(0, 18), 1, trainCtx());
    expect([...b.ds.running_mean]).toEqual([4, 5]);
    expect(b.ds.running_var[0]).toBeCloseTo(7.5, 5); // unbiased variance of 0..8
    expect(b.ds.running_var[1]).toBe(0);
  });

  it('reuses its buffers and stays right when the batch changes; shape errors name the layer', () => {
    const layer = createBatchNorm(3, [2, 3, 4], { type: 'batchnorm' });
    bindLayer(layer);
    const y = layer.forward(randn(48, 1), 2, trainCtx());
    expect(layer.forward(randn(48, 1), 2, trainCtx())).toBe(y);
    layer.forward(randn(120, 2), 5, trainCtx());
    const small = layer.forward(randn(24, 3), 1, trainCtx()).slice();
    const fresh = createBatchNorm(3, [2, 3, 4], { type: 'batchnorm' });
    bindLayer(fresh);
    expect(small).toEqual(fresh.forward(randn(24, 3), 1, trainCtx()));
    expect(() => layer.forward(new Float32Array(47), 2, trainCtx())).toThrow(/layers\[3\] \(batchnorm\): forward needs 48 floats/);
    expect(() => layer.backward(new Float32Array(24), 2, true)).toThrow(/layers\[3\] \(batchnorm\): backward for batch 2 .* does not match the last forward \(1 samples of \[2, 3, 4\]\)/);
  });
});
