// Test helpers for the layers of src/nn: bind a layer to flat buffers it
// does not own (as the model does), draw deterministic data, run
// forward + backward against an upstream G, compare with fixtures and run
// finite-difference checks, one line each in the tests.
import { expect } from 'vitest';
import { compareTensor, type FixtureTensor } from '../../src/check/fixture.js';
import { dotLoss, gradCheck, type GradCheckOptions } from '../../src/check/gradcheck.js';
import { sizeOf, type ForwardContext, type Layer } from '../../src/nn/layer.js';
import { CounterStream } from '../../src/random/counter.js';

export interface Bound {
  /** One flat buffer each, as in the model (docs/design.md, principle 2). */
  flatP: Float32Array; flatG: Float32Array; flatS: Float32Array; flatDs: Float32Array;
  /** Views by parameter / statistic name. */
  p: Record<string, Float32Array>; g: Record<string, Float32Array>;
  s: Record<string, Float32Array>; ds: Record<string, Float32Array>;
}

/** Allocate flat params/grads/stats, hand the layer views, initialize stats like the model. */
export function bindLayer(layer: Layer): Bound {
  const pSizes = layer.params.map((q) => sizeOf(q.shape));
  const sSizes = layer.stats.map((q) => sizeOf(q.shape));
  const flatP = new Float32Array(pSizes.reduce((a, b) => a + b, 0));
  const flatG = new Float32Array(flatP.length);
  const flatS = new Float32Array(sSizes.reduce((a, b) => a + b, 0));
  const flatDs = new Float32Array(flatS.length);
  const views = (flat: Float32Array, sizes: number[]): Float32Array[] => {
    let o = 0;
    return sizes.map((n) => { const v = flat.subarray(o, o + n); o += n; return v; });
  };
  const pv = views(flatP, pSizes), gv = views(flatG, pSizes);
  const sv = views(flatS, sSizes), dsv = views(flatDs, sSizes);
  const bound: Bound = { flatP, flatG, flatS, flatDs, p: {}, g: {}, s: {}, ds: {} };
  layer.params.forEach((q, i) => { bound.p[q.name] = pv[i]; bound.g[q.name] = gv[i]; });
  layer.stats.forEach((q, i) => {
    sv[i].fill(q.init === 'ones' ? 1 : 0);
    bound.s[q.name] = sv[i];
    bound.ds[q.name] = dsv[i];
  });
  layer.bind(pv, gv, sv, dsv);
  return bound;
}

export function trainCtx(rowOffset = 0, step = 0, seed = 1234): ForwardContext {
  return { training: true, seed, step, rowOffset };
}
export const EVAL: ForwardContext = { training: false, seed: 1234, step: 0, rowOffset: 0 };

/** n deterministic normal draws * scale + offset, from stream `stream`. */
export function randn(n: number, stream: number, scale = 1, offset = 0): Float32Array {
  const rng = new CounterStream(99, stream);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale + offset;
  return out;
}

/** Like randn but every |value| >= gap: keeps finite differences off kinks (relu at 0). */
export function randnAwayFromZero(n: number, stream: number, gap = 0.05): Float32Array {
  const x = randn(n, stream);
  for (let i = 0; i < n; i++) x[i] = x[i] >= 0 ? x[i] + gap : x[i] - gap;
  return x;
}

/** The fixture's float32-exact numbers as a Float32Array. */
export function f32(t: FixtureTensor): Float32Array {
  return Float32Array.from(t.data);
}

/** compareTensor at the float32 tolerance, with a message naming what failed. */
export function expectClose(actual: ArrayLike<number>, expected: FixtureTensor | ArrayLike<number>, what: string, rtol = 1e-4, atol = 1e-5): void {
  const c = compareTensor(actual, expected, rtol, atol);
  const e = 'data' in expected ? expected.data : expected;
  const detail = c.lengthMismatch
    ? `length ${c.lengthMismatch.actual} vs ${c.lengthMismatch.expected}`
    : `worst ratio ${c.worstRatio.toExponential(2)} at ${c.worstIndex}: ${actual[c.worstIndex]} vs ${e[c.worstIndex]}`;
  expect(c.ok, `${what}: ${detail}`).toBe(true);
}

export interface Run {
  y: Float32Array;
  dx: Float32Array | null;
  /** Parameter gradients of this one backward (grads zeroed first). */
  g: Record<string, Float32Array>;
}

/** Zero the grads, forward, backward with upstream G; copies of everything. */
export function runLayer(layer: Layer, b: Bound, x: Float32Array, batch: number, G: Float32Array, ctx: ForwardContext, needDx = true): Run {
  b.flatG.fill(0);
  const y = layer.forward(x, batch, ctx).slice();
  const dx = layer.backward(G, batch, needDx);
  const g: Record<string, Float32Array> = {};
  for (const name of Object.keys(b.g)) g[name] = b.g[name].slice();
  return { y, dx: dx === null ? null : dx.slice(), g };
}

/**
 * Finite-difference check of d sum(y * G) / d target, where target is the
 * input x or a bound parameter view, against `analytic`.
 */
export function expectGradCheck(
  what: string, layer: Layer, x: Float32Array, batch: number, G: Float32Array, ctx: ForwardContext,
  target: Float32Array, analytic: ArrayLike<number>, options: GradCheckOptions = {},
): void {
  const loss = (): number => dotLoss(layer.forward(x, batch, ctx), G);
  const r = gradCheck(loss, target, analytic, options);
  expect(r.ok, `${what}: worst ratio ${r.worstRatio.toFixed(3)} at ${r.worstIndex}: analytic ${r.analytic} vs numeric ${r.numeric}`).toBe(true);
  expect(r.checked).toBeGreaterThan(0);
}
