import { describe, expect, it } from 'vitest';
import { transpose } from '../../src/check/fixture.js';
import { DptrainError } from '../../src/errors.js';
import { createDense, denseBackward, denseForward } from '../../src/nn/dense.js';
import { loadFixture } from '../helpers/fixtures.js';
import { bindLayer, EVAL, expectClose, expectGradCheck, f32, randn, runLayer, trainCtx } from './layer-harness.js';

const fixture = loadFixture('dense.json');

describe('dense: fixtures (dense.json)', () => {
  for (const c of fixture.cases) {
    it(`layer: ${c.label}`, () => {
      const I = c.config.in_features as number, O = c.config.out_features as number;
      const N = c.inputs.x.shape[0];
      const layer = createDense(0, [I], { type: 'dense', units: O });
      const b = bindLayer(layer);
      b.p.W.set(f32(c.params.W_in_out)); // ours is stored (I, O)
      b.p.b.set(f32(c.params.b));
      const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), trainCtx());
      expectClose(r.y, c.outputs.y, 'y');
      expectClose(r.dx!, c.grads!.x, 'dx');
      expectClose(r.g.W, c.grads!.W_in_out, 'dW (in, out)');
      expectClose(transpose(r.g.W, I, O), c.grads!.W, 'dW (out, in)');
      expectClose(r.g.b, c.grads!.b, 'db');
    });

    it(`pure functions: ${c.label}`, () => {
      const I = c.config.in_features as number, O = c.config.out_features as number;
      const N = c.inputs.x.shape[0];
      const x = f32(c.inputs.x), W = f32(c.params.W_in_out), bias = f32(c.params.b), G = f32(c.upstream!.G);
      const y = new Float32Array(N * O);
      denseForward(y, x, W, bias, N, I, O);
      expectClose(y, c.outputs.y, 'y');
      const dx = new Float32Array(N * I), dW = new Float32Array(I * O), db = new Float32Array(O);
      denseBackward(dx, dW, db, G, x, W, N, I, O);
      expectClose(dx, c.grads!.x, 'dx');
      expectClose(dW, c.grads!.W_in_out, 'dW');
      expectClose(db, c.grads!.b, 'db');
    });
  }
});

describe('dense: finite differences', () => {
  const cases: { name: string; inShape: number[]; batch: number; units: number }[] = [
    { name: 'flat [5] -> 4, batch 3', inShape: [5], batch: 3, units: 4 },
    { name: 'per timestep [3, 5] -> [3, 4], batch 2', inShape: [3, 5], batch: 2, units: 4 },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const layer = createDense(1, t.inShape, { type: 'dense', units: t.units });
      const b = bindLayer(layer);
      const n = t.batch * t.inShape.reduce((a, d) => a * d, 1);
      b.p.W.set(randn(b.p.W.length, 1, 0.5));
      b.p.b.set(randn(b.p.b.length, 2, 0.5));
      const x = randn(n, 3);
      const G = randn((n / t.inShape[t.inShape.length - 1]) * t.units, 4);
      const r = runLayer(layer, b, x, t.batch, G, trainCtx());
      expectGradCheck('dx', layer, x, t.batch, G, trainCtx(), x, r.dx!);
      expectGradCheck('dW', layer, x, t.batch, G, trainCtx(), b.p.W, r.g.W);
      expectGradCheck('db', layer, x, t.batch, G, trainCtx(), b.p.b, r.g.b);
    });
  }
});

describe('dense: behaviour', () => {
  it('declares W (in, out) with decay and b (out) without', () => {
    const layer = createDense(2, [7], { type: 'dense', units: 3, kernelInit: 'he_normal' });
    expect(layer.outShape).toEqual([3]);
    expect(layer.params).toEqual([
      { name: 'W', shape: [7, 3], init: 'he_normal', fanIn: 7, fanOut: 3, decay: true },
      { name: 'b', shape: [3], init: 'zeros', fanIn: 7, fanOut: 3, decay: false },
    ]);
    expect(createDense(2, [7], { type: 'dense', units: 3 }).params[0].init).toBe('glorot_uniform');
  });

  it('useBias false: only W, y = x W', () => {
    const layer = createDense(0, [2], { type: 'dense', units: 2, useBias: false });
    expect(layer.params.map((q) => q.name)).toEqual(['W']);
    const b = bindLayer(layer);
    b.p.W.set([1, 2, 3, 4]); // [[1, 2], [3, 4]]
    const r = runLayer(layer, b, Float32Array.from([1, 1]), 1, Float32Array.from([1, 0]), trainCtx());
    expect([...r.y]).toEqual([4, 6]);
    expect([...r.dx!]).toEqual([1, 3]);
    expect([...r.g.W]).toEqual([1, 0, 1, 0]);
  });

  it('per-timestep input [T, F] equals T rows of [F]', () => {
    const seq = createDense(0, [3, 4], { type: 'dense', units: 2 });
    const flat = createDense(0, [4], { type: 'dense', units: 2 });
    expect(seq.outShape).toEqual([3, 2]);
    const bs = bindLayer(seq), bf = bindLayer(flat);
    const W = randn(8, 5), bias = randn(2, 6);
    bs.p.W.set(W); bs.p.b.set(bias); bf.p.W.set(W); bf.p.b.set(bias);
    const x = randn(2 * 3 * 4, 7), G = randn(2 * 3 * 2, 8);
    const rs = runLayer(seq, bs, x, 2, G, trainCtx());
    const rf = runLayer(flat, bf, x, 6, G, trainCtx());
    expect(rs.y).toEqual(rf.y);
    expect(rs.dx).toEqual(rf.dx);
    expect(rs.g.W).toEqual(rf.g.W);
  });

  it('backward accumulates into the parameter gradients', () => {
    const layer = createDense(0, [4], { type: 'dense', units: 3 });
    const b = bindLayer(layer);
    b.p.W.set(randn(12, 1)); b.p.b.set(randn(3, 2));
    const x = randn(8, 3), G = randn(6, 4);
    const once = runLayer(layer, b, x, 2, G, trainCtx());
    layer.backward(G, 2, true);
    for (let i = 0; i < 12; i++) expect(b.g.W[i]).toBeCloseTo(2 * once.g.W[i], 5);
    for (let i = 0; i < 3; i++) expect(b.g.b[i]).toBeCloseTo(2 * once.g.b[i], 5);
  });

  it('needDx false returns null and still computes dW', () => {
    const layer = createDense(0, [4], { type: 'dense', units: 3 });
    const b = bindLayer(layer);
    b.p.W.set(randn(12, 1));
    const r = runLayer(layer, b, randn(8, 3), 2, randn(6, 4), EVAL, false);
    expect(r.dx).toBeNull();
    expect(r.g.W.some((v) => v !== 0)).toBe(true);
  });

  it('reuses its buffers for the same batch and stays right when the batch changes', () => {
    const layer = createDense(0, [4], { type: 'dense', units: 3 });
    const b = bindLayer(layer);
    b.p.W.set(randn(12, 1)); b.p.b.set(randn(3, 2));
    const x5 = randn(20, 3), x2 = randn(8, 9);
    const y1 = layer.forward(x5, 5, trainCtx());
    const dx1 = layer.backward(randn(15, 4), 5, true);
    expect(layer.forward(x5, 5, trainCtx())).toBe(y1);
    expect(layer.backward(randn(15, 4), 5, true)).toBe(dx1);
    // Larger, then smaller: compare with a fresh layer.
    const big = layer.forward(randn(40, 10), 10, trainCtx());
    expect(big.length).toBe(30);
    const small = layer.forward(x2, 2, trainCtx()).slice();
    const fresh = createDense(0, [4], { type: 'dense', units: 3 });
    const bf = bindLayer(fresh);
    bf.p.W.set(b.p.W); bf.p.b.set(b.p.b);
    expect(small).toEqual(fresh.forward(x2, 2, trainCtx()));
    expect(small.length).toBe(6);
  });

  it('shape errors name the layer and the shapes', () => {
    expect(() => createDense(2, [], { type: 'dense', units: 3 }))
      .toThrow('layers[2] (dense): expected an input of rank >= 1, got []');
    try {
      createDense(2, [], { type: 'dense', units: 3 });
    } catch (e) {
      expect(e).toBeInstanceOf(DptrainError);
      expect((e as DptrainError).code).toBe('DPT_ERR_SHAPE');
    }
    const layer = createDense(4, [3], { type: 'dense', units: 2 });
    expect(() => layer.bind([new Float32Array(5), new Float32Array(2)], [new Float32Array(5), new Float32Array(2)], [], []))
      .toThrow(/layers\[4\] \(dense\): parameter W needs 6 floats \[3, 2\]/);
    bindLayer(layer);
    expect(() => layer.forward(new Float32Array(5), 2, trainCtx())).toThrow(/layers\[4\] \(dense\): forward needs 6 floats \(batch 2 of \[3\]\), got 5/);
  });
});
