import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DptrainError } from '../../src/errors.js';
import { createPool2d } from '../../src/nn/pool2d.js';
import type { Pool2dSpec } from '../../src/model/spec.js';
import { useKernels } from '../../src/tensor/setup.js';
import { loadFixture } from '../helpers/fixtures.js';
import { newKernels } from '../tensor/wasm-helpers.js';
import { bindLayer, expectClose, expectGradCheck, f32, randn, runLayer, trainCtx } from './layer-harness.js';

const fixture = loadFixture('pool2d.json');

/** The spec of a fixture case: its op and config, taken as PyTorch's pooling arguments. */
function specOf(op: string | undefined, config: Record<string, unknown>): Pool2dSpec {
  const spec: Pool2dSpec = {
    type: op === 'max' ? 'maxpool2d' : 'avgpool2d',
    poolSize: config.kernel_size as [number, number],
    stride: config.stride as [number, number],
    padding: config.padding as [number, number],
  };
  if (op === 'avg') spec.countIncludePad = config.count_include_pad as boolean;
  return spec;
}

for (const kind of ['ts', 'wasm'] as const) {
  describe(`pool2d: fixtures (pool2d.json), ${kind} kernels`, () => {
    beforeAll(() => useKernels(kind === 'wasm' ? newKernels(64 * 1024 * 1024) : null));
    afterAll(() => useKernels(null));
    for (const c of fixture.cases) {
      it(c.label, () => {
        const [N, C, H, W] = c.inputs.x.shape;
        const layer = createPool2d(0, [C, H, W], specOf(c.op, c.config));
        expect([N, ...layer.outShape]).toEqual(c.outputs.y.shape);
        const b = bindLayer(layer);
        const r = runLayer(layer, b, f32(c.inputs.x), N, f32(c.upstream!.G), trainCtx());
        expectClose(r.y, c.outputs.y, 'y');
        expectClose(r.dx!, c.grads!.x, 'dx');
      });
    }
  });
}

describe('pool2d: finite differences', () => {
  const cases: { name: string; inShape: number[]; batch: number; spec: Pool2dSpec }[] = [
    { name: 'max 2x2', inShape: [2, 6, 5], batch: 2, spec: { type: 'maxpool2d', poolSize: 2 } },
    { name: 'max 3x3 stride 2 same', inShape: [2, 7, 6], batch: 2, spec: { type: 'maxpool2d', poolSize: 3, stride: 2, padding: 'same' } },
    { name: 'avg 3x2 stride 1 padding (1, 1), padding counted', inShape: [1, 5, 6], batch: 2, spec: { type: 'avgpool2d', poolSize: [3, 2], stride: 1, padding: 1 } },
    { name: 'avg 3x3 stride 2 same, padding not counted', inShape: [2, 6, 7], batch: 1, spec: { type: 'avgpool2d', poolSize: 3, stride: 2, padding: 'same', countIncludePad: false } },
  ];
  for (const t of cases) {
    it(t.name, () => {
      const layer = createPool2d(1, t.inShape, t.spec);
      const b = bindLayer(layer);
      // Distinct values spaced wider than the finite-difference step: no max changes sides.
      const n = t.batch * t.inShape.reduce((a, d) => a * d, 1);
      const order = randn(n, 3);
      const ranks = [...order.keys()].sort((i, j) => order[i] - order[j]);
      const x = new Float32Array(n);
      ranks.forEach((i, r) => { x[i] = (r - n / 2) * 0.1; });
      const G = randn(t.batch * layer.outShape.reduce((a, d) => a * d, 1), 4);
      const r = runLayer(layer, b, x, t.batch, G, trainCtx());
      expectGradCheck('dx', layer, x, t.batch, G, trainCtx(), x, r.dx!, { h: 1e-2, maxChecks: 200 });
    });
  }
});

describe('pool2d: behaviour', () => {
  it('the window is the default stride; output sizes in floor mode', () => {
    const out = (inShape: number[], spec: Omit<Pool2dSpec, 'type'>) => createPool2d(0, inShape, { type: 'maxpool2d', ...spec }).outShape;
    expect(out([8, 24, 24], { poolSize: 2 })).toEqual([8, 12, 12]);
    expect(out([3, 7, 5], { poolSize: 2 })).toEqual([3, 3, 2]);
    expect(out([3, 7, 5], { poolSize: 2, padding: 'same' })).toEqual([3, 4, 3]);
    expect(out([3, 7, 9], { poolSize: 3, stride: 2, padding: 1 })).toEqual([3, 4, 5]);
  });

  it('max pooling routes the gradient to the one maximum of each window, avg shares it', () => {
    const max = createPool2d(0, [1, 2, 2], { type: 'maxpool2d', poolSize: 2 });
    bindLayer(max);
    expect([...max.forward(Float32Array.from([1, 4, 3, 2]), 1, trainCtx())]).toEqual([4]);
    expect([...max.backward(Float32Array.from([5]), 1, true)!]).toEqual([0, 5, 0, 0]);
    const avg = createPool2d(0, [1, 2, 2], { type: 'avgpool2d', poolSize: 2 });
    bindLayer(avg);
    expect([...avg.forward(Float32Array.from([1, 4, 3, 2]), 1, trainCtx())]).toEqual([2.5]);
    expect([...avg.backward(Float32Array.from([2]), 1, true)!]).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('errors name the layer, the shapes and the option', () => {
    const err = (f: () => unknown): DptrainError => {
      try { f(); } catch (e) { return e as DptrainError; }
      throw new Error('no error');
    };
    expect(err(() => createPool2d(2, [4, 4], { type: 'maxpool2d', poolSize: 2 })).message)
      .toMatch(/^layers\[2\] \(maxpool2d\): expected an input of shape \[C, H, W\]/);
    const pad = err(() => createPool2d(2, [1, 8, 8], { type: 'avgpool2d', poolSize: 2, padding: 2 }));
    expect(pad.code).toBe('DPT_ERR_SHAPE');
    expect(pad.message).toBe('layers[2] (avgpool2d): padding 2x2 is more than half the 2x2 window; use at most 1x1');
    expect(err(() => createPool2d(0, [1, 8, 8], { type: 'maxpool2d', poolSize: 2, countIncludePad: true })).code).toBe('DPT_ERR_MODEL_SPEC');
  });
});
