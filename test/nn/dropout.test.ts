// Dropout has no fixture (RNG streams cannot be matched across libraries):
// these are the README §8 rule's tests, training and eval mode separately.
import { describe, expect, it } from 'vitest';
import { createDropout, dropoutMask } from '../../src/nn/dropout.js';
import { bindLayer, EVAL, expectGradCheck, randn, runLayer, trainCtx } from './layer-harness.js';

/** Values with |x| >= 1, so a zero output can only come from the mask. */
function nonzero(n: number, stream: number): Float32Array {
  const x = randn(n, stream);
  for (let i = 0; i < n; i++) x[i] = x[i] >= 0 ? 1 + x[i] : x[i] - 1;
  return x;
}

describe('dropout: eval mode', () => {
  it('is the identity: returns x itself, and dy itself in backward', () => {
    const layer = createDropout(0, [4], { type: 'dropout', rate: 0.5 });
    const x = nonzero(12, 1), G = randn(12, 2);
    expect(layer.forward(x, 3, EVAL)).toBe(x);
    expect(layer.backward(G, 3, true)).toBe(G);
    expect(layer.backward(G, 3, false)).toBeNull();
  });
});

describe('dropout: training mode', () => {
  const p = 0.3;

  it('drops a fraction close to p of a large tensor and keeps the mean', () => {
    const layer = createDropout(2, [1000], { type: 'dropout', rate: p });
    const x = nonzero(100_000, 3);
    const y = layer.forward(x, 100, trainCtx());
    let zeros = 0, sx = 0, sy = 0;
    for (let i = 0; i < y.length; i++) {
      if (y[i] === 0) zeros++;
      sx += Math.abs(x[i]);
      sy += Math.abs(y[i]);
    }
    // std of the fraction: sqrt(p (1-p) / 1e5) = 0.00145; allow 5 sigma.
    expect(Math.abs(zeros / y.length - p)).toBeLessThan(0.0075);
    expect(Math.abs(sy / sx - 1)).toBeLessThan(0.02);
  });

  it('kept elements are exactly x / (1 - p); the gradient is 0 where y is 0, G / (1 - p) elsewhere', () => {
    const layer = createDropout(0, [50], { type: 'dropout', rate: p });
    const x = nonzero(500, 4), G = randn(500, 5);
    const r = runLayer(layer, bindLayer(layer), x, 10, G, trainCtx());
    let kept = 0;
    for (let i = 0; i < 500; i++) {
      if (r.y[i] === 0) {
        expect(r.dx![i]).toBe(0);
      } else {
        kept++;
        expect(r.y[i]).toBe(Math.fround(x[i] / (1 - p)));
        expect(r.dx![i]).toBe(Math.fround(G[i] / (1 - p)));
      }
    }
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(500);
  });

  it('gives a sample the same mask whatever micro-shard it falls in', () => {
    const E = 6, B = 8;
    const x = nonzero(B * E, 6);
    const whole = createDropout(1, [E], { type: 'dropout', rate: 0.5 });
    const yWhole = whole.forward(x, B, trainCtx(0, 7)).slice();
    // Rows 0..2 in one call, rows 3..7 in another (another layer object, as on another worker).
    const a = createDropout(1, [E], { type: 'dropout', rate: 0.5 });
    const b = createDropout(1, [E], { type: 'dropout', rate: 0.5 });
    const yA = a.forward(x.subarray(0, 3 * E), 3, trainCtx(0, 7));
    const yB = b.forward(x.subarray(3 * E), 5, trainCtx(3, 7));
    expect([...yA, ...yB]).toEqual([...yWhole]);
    // ... and a different mask at another step, in another layer, or for another seed.
    expect(whole.forward(x, B, trainCtx(0, 8))).not.toEqual(yWhole);
    expect(createDropout(2, [E], { type: 'dropout', rate: 0.5 }).forward(x, B, trainCtx(0, 7))).not.toEqual(yWhole);
    expect(whole.forward(x, B, trainCtx(0, 7, 99))).not.toEqual(yWhole);
  });

  it('keys the mask by element within the sample for a sequence input [T, F]', () => {
    const m1 = new Float32Array(2 * 12), m2 = new Float32Array(12);
    dropoutMask(m1, 0.5, 1, 2, 10, 3, 2, 12);
    dropoutMask(m2, 0.5, 1, 2, 11, 3, 1, 12);
    expect(m1.subarray(12)).toEqual(m2);
    const layer = createDropout(3, [3, 4], { type: 'dropout', rate: 0.5 });
    const y = layer.forward(Float32Array.from({ length: 24 }, () => 1), 2, trainCtx(10, 2, 1));
    for (let i = 0; i < 24; i++) expect(y[i]).toBe(m1[i] * 2);
  });

  it('p = 0 is the identity', () => {
    const layer = createDropout(0, [8], { type: 'dropout', rate: 0 });
    const x = nonzero(16, 7), G = randn(16, 8);
    expect([...layer.forward(x, 2, trainCtx())]).toEqual([...x]);
    expect([...layer.backward(G, 2, true)!]).toEqual([...G]);
  });

  it('p = 1 gives all zeros (and no NaN) forward and backward', () => {
    const layer = createDropout(0, [8], { type: 'dropout', rate: 1 });
    const r = runLayer(layer, bindLayer(layer), nonzero(16, 9), 2, randn(16, 10), trainCtx());
    expect([...r.y].every((v) => v === 0 && !Object.is(v, -0))).toBe(true);
    expect([...r.dx!].every((v) => v === 0)).toBe(true);
  });

  it('passes the finite-difference check with its mask held fixed', () => {
    const layer = createDropout(0, [5], { type: 'dropout', rate: 0.4 });
    const x = randn(20, 11), G = randn(20, 12);
    const r = runLayer(layer, bindLayer(layer), x, 4, G, trainCtx(2, 3));
    expectGradCheck('dx', layer, x, 4, G, trainCtx(2, 3), x, r.dx!);
  });

  it('reuses its buffers for the same batch and stays right when the batch changes', () => {
    const layer = createDropout(0, [4], { type: 'dropout', rate: 0.5 });
    const x = nonzero(12, 13);
    const y = layer.forward(x, 3, trainCtx());
    const y3 = y.slice();
    const dx = layer.backward(randn(12, 14), 3, true);
    expect(layer.forward(x, 3, trainCtx())).toBe(y);
    expect(layer.backward(randn(12, 14), 3, true)).toBe(dx);
    layer.forward(nonzero(40, 15), 10, trainCtx());
    const small = layer.forward(x.subarray(0, 4), 1, trainCtx()).slice();
    expect(small).toEqual(y3.subarray(0, 4)); // row 0 keeps its mask
    expect(small.length).toBe(4);
  });
});
