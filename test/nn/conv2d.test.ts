import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DptrainError } from '../../src/errors.js';
import { createConv2d } from '../../src/nn/conv2d.js';
import type { Conv2dSpec } from '../../src/model/spec.js';
import { useKernels } from '../../src/tensor/setup.js';
import { loadFixture } from '../helpers/fixtures.js';
import { newKernels } from '../tensor/wasm-helpers.js';
import { bindLayer, EVAL, expectClose, expectGradCheck, f32, randn, runLayer, trainCtx } from './layer-harness.js';

const fixture = loadFixture('conv2d.json');

/** The spec of a fixture case: its config, taken as PyTorch's Conv2d arguments. */
function specOf(config: Record<string, unknown>): Conv2dSpec {
  return {
    type: 'conv2d',
    filters: config.out_channels as number,
    kernelSize: config.kernel_size as [number, number],
    stride: config.stride as [number, number],
    padding: config.padding as [number, number],
    dilation: config.dilation as [number, number],
    useBias: config.bias as boolean,
  };
}

for (const kind of ['ts', 'wasm'] as const) {
  describe(`conv2d: fixtures (conv2d.json), ${kind} kernels`, () => {
    beforeAll(() => useKernels(kind === 'wasm' ? newKernels(64 * 1024 * 1024) : null));
    afterAll(() => useKernels(null));
    for (const c of fixture.cases) {
      it(c.label, () => {
        const [N, C, H, W] = c.inputs.x.shape;
        const layer = createConv2d(0, [C, H, W], specOf(c.config));
        expect([N, ...layer.outShape]).toEqual(c.outputs.y.shape);
        const b = bindLayer(layer);
        b.p.W.set(f32(c.params.W));
        if (c.params.b) b.p.b.set(f32(c.params.b));
        const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), trainCtx());
        expectClose(r.y, c.outputs.y, 'y');
        expectClose(r.dx!, c.grads!.x, 'dx');
        expectClose(r.g.W, c.grads!.W, 'dW');
        if (c.grads!.b) expectClose(r.g.b, c.grads!.b, 'db');
      });
    }
  });
}

describe('conv2d: finite differences', () => {
  const cases: { name: string; inShape: number[]; batch: number; spec: Conv2dSpec }[] = [
    { name: '3x3 valid, 2 -> 3 channels', inShape: [2, 6, 5], batch: 2, spec: { type: 'conv2d', filters: 3, kernelSize: 3 } },
    { name: 'stride 2, same padding', inShape: [2, 7, 6], batch: 2, spec: { type: 'conv2d', filters: 2, kernelSize: 3, stride: 2, padding: 'same' } },
    { name: '2x3 kernel, dilation (2, 1), padding (1, 2)', inShape: [1, 7, 6], batch: 3, spec: { type: 'conv2d', filters: 2, kernelSize: [2, 3], dilation: [2, 1], padding: [1, 2] } },
    { name: 'even kernel, same padding (extra row and column at the end)', inShape: [2, 5, 5], batch: 1, spec: { type: 'conv2d', filters: 2, kernelSize: 4, padding: 'same' } },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const layer = createConv2d(1, t.inShape, t.spec);
      const b = bindLayer(layer);
      const n = t.batch * t.inShape.reduce((a, d) => a * d, 1);
      b.p.W.set(randn(b.p.W.length, 1, 0.5));
      b.p.b.set(randn(b.p.b.length, 2, 0.5));
      const x = randn(n, 3);
      const G = randn(t.batch * layer.outShape.reduce((a, d) => a * d, 1), 4);
      const r = runLayer(layer, b, x, t.batch, G, trainCtx());
      expectGradCheck('dx', layer, x, t.batch, G, trainCtx(), x, r.dx!);
      expectGradCheck('dW', layer, x, t.batch, G, trainCtx(), b.p.W, r.g.W);
      expectGradCheck('db', layer, x, t.batch, G, trainCtx(), b.p.b, r.g.b);
    });
  }
});

describe('conv2d: behaviour', () => {
  it('declares W (O, C, kh, kw) with decay and the receptive field in the fans, b (O) without', () => {
    const layer = createConv2d(2, [3, 10, 10], { type: 'conv2d', filters: 8, kernelSize: [5, 3], kernelInit: 'he_normal' });
    expect(layer.outShape).toEqual([8, 6, 8]);
    expect(layer.params).toEqual([
      { name: 'W', shape: [8, 3, 5, 3], init: 'he_normal', fanIn: 45, fanOut: 120, decay: true },
      { name: 'b', shape: [8], init: 'zeros', fanIn: 45, fanOut: 120, decay: false },
    ]);
    expect(createConv2d(0, [1, 5, 5], { type: 'conv2d', filters: 1, kernelSize: 3, useBias: false }).params.map((p) => p.name)).toEqual(['W']);
  });

  it('output sizes: valid, same (any stride), explicit, dilation', () => {
    const out = (inShape: number[], spec: Omit<Conv2dSpec, 'type' | 'filters'>) => createConv2d(0, inShape, { type: 'conv2d', filters: 4, ...spec }).outShape;
    expect(out([1, 28, 28], { kernelSize: 5 })).toEqual([4, 24, 24]);
    expect(out([1, 28, 28], { kernelSize: 5, padding: 'same' })).toEqual([4, 28, 28]);
    expect(out([1, 28, 27], { kernelSize: 3, stride: 2, padding: 'same' })).toEqual([4, 14, 14]);
    expect(out([1, 11, 6], { kernelSize: 3, stride: 2, padding: 1 })).toEqual([4, 6, 3]);
    expect(out([1, 12, 8], { kernelSize: 3, dilation: 2, padding: 2 })).toEqual([4, 12, 8]);
  });

  it('a batch equals its samples one by one (each sample alone, same bits)', () => {
    const layer = createConv2d(0, [2, 6, 6], { type: 'conv2d', filters: 3, kernelSize: 3, padding: 1 });
    const b = bindLayer(layer);
    b.p.W.set(randn(b.p.W.length, 1)); b.p.b.set(randn(3, 2));
    const x = randn(3 * 72, 3);
    const all = layer.forward(x, 3, EVAL).slice();
    for (let n = 0; n < 3; n++) {
      expect(layer.forward(x.subarray(n * 72, (n + 1) * 72), 1, EVAL)).toEqual(all.subarray(n * 108, (n + 1) * 108));
    }
  });

  it('backward accumulates into dW and db; needDx false returns null', () => {
    const layer = createConv2d(0, [1, 5, 5], { type: 'conv2d', filters: 2, kernelSize: 3 });
    const b = bindLayer(layer);
    b.p.W.set(randn(18, 1));
    const x = randn(50, 3), G = randn(36, 4);
    const once = runLayer(layer, b, x, 2, G, trainCtx(), false);
    expect(once.dx).toBeNull();
    layer.backward(G, 2, false);
    for (let i = 0; i < 18; i++) expect(b.g.W[i]).toBeCloseTo(2 * once.g.W[i], 5);
    for (let i = 0; i < 2; i++) expect(b.g.b[i]).toBeCloseTo(2 * once.g.b[i], 5);
  });

  it('shape errors name the layer and the shapes', () => {
    const err = (f: () => unknown): DptrainError => {
      try { f(); } catch (e) { return e as DptrainError; }
      throw new Error('no error');
    };
    const e = err(() => createConv2d(3, [784], { type: 'conv2d', filters: 2, kernelSize: 3 }));
    expect(e.code).toBe('DPT_ERR_SHAPE');
    expect(e.message).toBe('layers[3] (conv2d): expected an input of shape [C, H, W] (channels, height, width), got [784]; an image model\'s inputShape is e.g. [1, 28, 28]');
    expect(err(() => createConv2d(1, [1, 4, 4], { type: 'conv2d', filters: 2, kernelSize: 5 })).message)
      .toBe('layers[1] (conv2d): a 5x5 window does not fit the input [1, 4, 4] padded to 4x4; use a smaller window or more padding');
    expect(err(() => createConv2d(1, [1, 6, 6], { type: 'conv2d', filters: 2, kernelSize: 3, dilation: 3 })).message)
      .toMatch(/with dilation 3x3 \(reach 7x7\)/);
    const layer = createConv2d(4, [2, 5, 5], { type: 'conv2d', filters: 2, kernelSize: 3 });
    bindLayer(layer);
    expect(() => layer.forward(new Float32Array(49), 1, trainCtx())).toThrow(/layers\[4\] \(conv2d\): forward needs 50 floats \(batch 1 of \[2, 5, 5\]\), got 49/);
    layer.forward(new Float32Array(50), 1, trainCtx());
    expect(() => layer.backward(new Float32Array(18), 2, true)).toThrow(/layers\[4\] \(conv2d\): backward for batch 2/);
  });
});
