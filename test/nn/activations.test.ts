import { describe, expect, it } from 'vitest';
import { dotLoss, gradCheck } from '../../src/check/gradcheck.js';
import { activationOps, createActivation, type ActivationKind } from '../../src/nn/activations.js';
import { loadFixture } from '../helpers/fixtures.js';
import { bindLayer, EVAL, expectClose, expectGradCheck, f32, randn, randnAwayFromZero, runLayer, trainCtx } from './layer-harness.js';

const fixture = loadFixture('activations.json');
const KINDS: ActivationKind[] = ['relu', 'sigmoid', 'tanh', 'softmax'];

describe('activations: fixtures (activations.json)', () => {
  for (const c of fixture.cases) {
    const op = c.op as ActivationKind | 'log_softmax';
    const shape = c.inputs.x.shape;
    const C = shape[shape.length - 1];
    const R = c.inputs.x.data.length / C;

    it(`pure ${op}: ${c.label}`, () => {
      const y = new Float32Array(R * C), dx = new Float32Array(R * C);
      activationOps[op].forward(y, f32(c.inputs.x), R, C);
      activationOps[op].backward(dx, f32(c.upstream!.G), y, R, C);
      expectClose(y, c.outputs.y, `${op} y`);
      expectClose(dx, c.grads!.x, `${op} dx`);
    });

    if (op === 'log_softmax') continue; // not a layer: the loss fuses it
    it(`layer ${op}: ${c.label}`, () => {
      // Batch = axis 0, per-sample shape = the rest (3-D cases: [B, T, C]).
      const layer = createActivation(0, shape.slice(1), op);
      const r = runLayer(layer, bindLayer(layer), f32(c.inputs.x), shape[0], f32(c.upstream!.G), trainCtx());
      expectClose(r.y, c.outputs.y, `${op} y`);
      expectClose(r.dx!, c.grads!.x, `${op} dx`);
    });
  }
});

describe('activations: finite differences', () => {
  for (const kind of [...KINDS, 'log_softmax' as const]) {
    for (const inShape of [[5], [3, 4]]) {
      it(`${kind} on batch 3 of [${inShape}]`, () => {
        const n = 3 * inShape.reduce((a, d) => a * d, 1);
        const C = inShape[inShape.length - 1];
        const x = randnAwayFromZero(n, 11); // relu's kink stays out of reach of h
        const G = randn(n, 12);
        if (kind === 'log_softmax') {
          const y = new Float32Array(n), dx = new Float32Array(n);
          const op = activationOps.log_softmax;
          op.forward(y, x, n / C, C);
          op.backward(dx, G, y, n / C, C);
          const loss = (): number => { op.forward(y, x, n / C, C); return dotLoss(y, G); };
          const r = gradCheck(loss, x, dx);
          expect(r.ok, `worst ratio ${r.worstRatio}`).toBe(true);
          return;
        }
        const layer = createActivation(0, inShape, kind);
        const r = runLayer(layer, bindLayer(layer), x, 3, G, EVAL);
        expectGradCheck('dx', layer, x, 3, G, EVAL, x, r.dx!);
      });
    }
  }
});

describe('activations: behaviour', () => {
  it('relu passes no gradient at exactly 0', () => {
    const layer = createActivation(0, [3], 'relu');
    const r = runLayer(layer, bindLayer(layer), Float32Array.from([0, -0, 1e-30]), 1, Float32Array.from([5, 5, 5]), EVAL);
    expect([...r.y]).toEqual([0, 0, Math.fround(1e-30)]);
    expect([...r.dx!]).toEqual([0, 0, 5]);
  });

  it('sigmoid and tanh are finite and saturate at +-1000', () => {
    for (const kind of ['sigmoid', 'tanh'] as const) {
      const layer = createActivation(0, [2], kind);
      const r = runLayer(layer, bindLayer(layer), Float32Array.from([1000, -1000]), 1, Float32Array.from([1, 1]), EVAL);
      expect([...r.y]).toEqual(kind === 'sigmoid' ? [1, 0] : [1, -1]);
      expect([...r.dx!]).toEqual([0, 0]);
    }
  });

  it('softmax over the last axis: rows of [T, C] sum to 1, also for +-1000', () => {
    const layer = createActivation(0, [2, 3], 'softmax');
    const x = Float32Array.from([1000, 1000, 999, -1000, -1000.5, -1001, 0, 0, 0, 1, 2, 3]);
    const y = layer.forward(x, 2, EVAL);
    for (let r = 0; r < 4; r++) {
      const s = y[3 * r] + y[3 * r + 1] + y[3 * r + 2];
      expect(s).toBeCloseTo(1, 6);
    }
    expect(y[0]).toBe(y[1]);
    expect(y[6]).toBeCloseTo(1 / 3, 7);
  });

  it('reuses its buffers for the same batch and stays right when the batch changes', () => {
    for (const kind of KINDS) {
      const layer = createActivation(0, [4], kind);
      const x3 = randn(12, 1), x1 = randn(4, 2);
      const y = layer.forward(x3, 3, EVAL);
      const dx = layer.backward(randn(12, 3), 3, true);
      expect(layer.forward(x3, 3, EVAL)).toBe(y);
      expect(layer.backward(randn(12, 3), 3, true)).toBe(dx);
      layer.forward(randn(40, 4), 10, EVAL);
      const small = layer.forward(x1, 1, EVAL).slice();
      expect(small).toEqual(createActivation(0, [4], kind).forward(x1, 1, EVAL));
      expect(small.length).toBe(4);
    }
  });

  it('declares no parameters and keeps the shape', () => {
    const layer = createActivation(3, [2, 5], 'tanh');
    expect(layer.type).toBe('tanh');
    expect(layer.outShape).toEqual([2, 5]);
    expect(layer.params).toEqual([]);
    layer.forward(randn(10, 1), 1, EVAL);
    expect(layer.backward(randn(10, 2), 1, false)).toBeNull();
  });

  it('shape errors name the layer', () => {
    expect(() => createActivation(1, [], 'softmax')).toThrow('layers[1] (softmax): expected an input of rank >= 1, got []');
    const layer = createActivation(1, [4], 'relu');
    expect(() => layer.forward(new Float32Array(3), 1, EVAL)).toThrow(/layers\[1\] \(relu\): forward needs 4 floats/);
  });
});
