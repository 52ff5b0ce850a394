import { describe, expect, it } from 'vitest';
import { compareTensor, toF32, transpose, type FixtureCase } from '../../src/check/fixture.js';
import { dotLoss, gradCheck } from '../../src/check/gradcheck.js';
import { DptrainError } from '../../src/errors.js';
import { sizeOf, type ForwardContext, type Layer } from '../../src/nn/layer.js';
import { createLstm, lstmBackward, lstmForward, LstmState, lstmTorch } from '../../src/nn/lstm.js';
import { CounterStream } from '../../src/random/counter.js';
import { loadFixture } from '../helpers/fixtures.js';

// Tighter than gradCheck's defaults and every coordinate: a 1% error in one
// gate's derivative fails here (checked by mutation).
const TIGHT = { rtol: 2e-3, atol: 2e-4, maxChecks: 1000 };
const ctx: ForwardContext = { training: true, seed: 1, step: 0, rowOffset: 0 };

function randn(n: number, seed: number, scale = 1): Float32Array {
  const rng = new CounterStream(seed, 77);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal() * scale;
  return out;
}

function expectClose(name: string, actual: ArrayLike<number>, expected: Parameters<typeof compareTensor>[1]): void {
  const r = compareTensor(actual, expected);
  expect(r.ok, `${name}: worst ratio ${r.worstRatio} at ${r.worstIndex}${r.lengthMismatch ? ` length ${JSON.stringify(r.lengthMismatch)}` : ''}`).toBe(true);
}

/** The bit patterns, so that +0/-0 and every last bit count. */
function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

interface Bound { layer: Layer; p: Float32Array[]; g: Float32Array[] }

function makeLstm(T: number, F: number, H: number, returnSequences: boolean, seed: number): Bound {
  const layer = createLstm(0, [T, F], { type: 'lstm', units: H, returnSequences });
  const p = layer.params.map((s, k) => randn(sizeOf(s.shape), seed + k, 0.5));
  const g = layer.params.map((s) => new Float32Array(sizeOf(s.shape)));
  layer.bind(p, g, [], []);
  return { layer, p, g };
}

/** Zeroes g, runs forward and backward once; returns dx and copies of the grads. */
function runOnce(m: Bound, x: Float32Array, B: number, dy: Float32Array): { y: Float32Array; dx: Float32Array; g: Float32Array[] } {
  for (const gi of m.g) gi.fill(0);
  const y = m.layer.forward(x, B, ctx).slice();
  const dx = m.layer.backward(dy, B, true)!.slice();
  return { y, dx, g: m.g.map((gi) => gi.slice()) };
}

describe('lstm: lstm.json fixtures (PyTorch, float64)', () => {
  const file = loadFixture('lstm.json');

  function inputsOf(c: FixtureCase) {
    const [B, T, F] = c.inputs.x.shape;
    const H = c.inputs.h0.shape[1];
    return {
      B, T, F, H,
      x: toF32(c.inputs.x), h0: toF32(c.inputs.h0), c0: toF32(c.inputs.c0),
      weight_ih: toF32(c.params.weight_ih), weight_hh: toF32(c.params.weight_hh),
      bias_ih: toF32(c.params.bias_ih), bias_hh: toF32(c.params.bias_hh),
      G_output: toF32(c.upstream!.G_output), G_h_n: toF32(c.upstream!.G_h_n),
    };
  }

  it('has cases', () => {
    expect(file.cases.length).toBeGreaterThan(0);
  });

  for (const c of file.cases) {
    it(`lstmTorch matches every output and gradient: ${c.label}`, () => {
      const r = lstmTorch(inputsOf(c));
      for (const name of ['output', 'h_n', 'c_n', 'gate_i_t0', 'gate_f_t0', 'gate_g_t0', 'gate_o_t0'] as const) {
        expectClose(`outputs.${name}`, r[name], c.outputs[name]);
      }
      for (const name of ['x', 'h0', 'c0', 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'] as const) {
        expectClose(`grads.${name}`, r.grads[name], c.grads![name]);
      }
    });
  }

  // The layer starts from zero states: check it on the cases that do too.
  const zeroStart = file.cases.filter((c) => c.inputs.h0.data.every((v) => v === 0) && c.inputs.c0.data.every((v) => v === 0));
  it('has a case with zero initial states', () => {
    expect(zeroStart.length).toBeGreaterThan(0);
  });
  for (const c of zeroStart) {
    it(`the layer (returnSequences) matches: ${c.label}`, () => {
      const a = inputsOf(c);
      const { B, T, F, H } = a;
      const layer = createLstm(3, [T, F], { type: 'lstm', units: H, returnSequences: true });
      const p = [transpose(a.weight_ih, 4 * H, F), transpose(a.weight_hh, 4 * H, H), a.bias_ih.slice(), a.bias_hh.slice()];
      const g = layer.params.map((s) => new Float32Array(sizeOf(s.shape)));
      layer.bind(p, g, [], []);
      const y = layer.forward(a.x, B, ctx);
      expectClose('output', y, c.outputs.output);
      // h_n is output[:, T-1], so its upstream folds into the last step's.
      const dy = a.G_output.slice();
      for (let bi = 0; bi < B; bi++) for (let j = 0; j < H; j++) dy[(bi * T + T - 1) * H + j] += a.G_h_n[bi * H + j];
      const dx = layer.backward(dy, B, true)!;
      expectClose('grads.x', dx, c.grads!.x);
      expectClose('grads.weight_ih', transpose(g[0], F, 4 * H), c.grads!.weight_ih);
      expectClose('grads.weight_hh', transpose(g[1], H, 4 * H), c.grads!.weight_hh);
      expectClose('grads.bias_ih', g[2], c.grads!.bias_ih);
      expectClose('grads.bias_hh', g[3], c.grads!.bias_hh);
    });
  }
});

describe('lstm: finite differences', () => {
  const B = 3, T = 4, F = 3, H = 5;
  for (const returnSequences of [true, false]) {
    it(`x and every parameter, returnSequences ${returnSequences}`, () => {
      const m = makeLstm(T, F, H, returnSequences, 10);
      const x = randn(B * T * F, 20);
      const G = randn(B * sizeOf(m.layer.outShape), 30);
      const { dx, g } = runOnce(m, x, B, G);
      const loss = () => dotLoss(m.layer.forward(x, B, ctx), G);
      const rx = gradCheck(loss, x, dx, TIGHT);
      expect(rx.ok, `x: ${JSON.stringify(rx)}`).toBe(true);
      m.layer.params.forEach((spec, k) => {
        const r = gradCheck(loss, m.p[k], g[k], TIGHT);
        expect(r.ok, `${spec.name}: ${JSON.stringify(r)}`).toBe(true);
        expect(r.checked).toBeGreaterThan(0);
      });
    });
  }

  it('h0, c0 and the upstream on h_n through lstmForward / lstmBackward', () => {
    const W_ih = randn(F * 4 * H, 1, 0.5), W_hh = randn(H * 4 * H, 2, 0.5), b = randn(4 * H, 3, 0.5);
    const x = randn(B * T * F, 4), h0 = randn(B * H, 5, 0.5), c0 = randn(B * H, 6, 0.5);
    const Gy = randn(B * T * H, 7), Gh = randn(B * H, 8);
    const s = new LstmState();
    const y = new Float32Array(B * T * H);
    const loss = () => {
      lstmForward(s, y, x, h0, c0, W_ih, W_hh, b, B, T, F, H);
      return dotLoss(y, Gy) + dotLoss(s.h, Gh);
    };
    loss();
    const dW_ih = new Float32Array(W_ih.length), dW_hh = new Float32Array(W_hh.length), db = new Float32Array(b.length);
    const dx = new Float32Array(x.length), dh0 = new Float32Array(B * H), dc0 = new Float32Array(B * H);
    lstmBackward(s, dx, dh0, dc0, dW_ih, dW_hh, db, Gy, Gh, x, W_ih, W_hh);
    const checks: [string, Float32Array, Float32Array][] = [
      ['x', x, dx], ['h0', h0, dh0], ['c0', c0, dc0], ['W_ih', W_ih, dW_ih], ['W_hh', W_hh, dW_hh], ['b', b, db],
    ];
    for (const [name, v, d] of checks) {
      const r = gradCheck(loss, v, d, TIGHT);
      expect(r.ok, `${name}: ${JSON.stringify(r)}`).toBe(true);
    }
  });
});

describe('lstm: layer contract', () => {
  it('declares its parameters in the documented layout', () => {
    const layer = createLstm(2, [7, 3], { type: 'lstm', units: 4 });
    expect(layer.type).toBe('lstm');
    expect(layer.outShape).toEqual([4]);
    expect(layer.params.map((p) => [p.name, p.shape, p.init, p.decay])).toEqual([
      ['W_ih', [3, 16], 'glorot_uniform', true],
      ['W_hh', [4, 16], 'glorot_uniform', true],
      ['b_ih', [16], 'zeros', false],
      ['b_hh', [16], 'zeros', false],
    ]);
    const seq = createLstm(2, [7, 3], { type: 'lstm', units: 4, returnSequences: true, kernelInit: 'he_normal' });
    expect(seq.outShape).toEqual([7, 4]);
    expect(seq.params[0].init).toBe('he_normal');
  });

  it('refuses an input that is not [T, F], naming the layer and the shapes', () => {
    for (const shape of [[784], [2, 3, 4]]) {
      let err: unknown;
      try { createLstm(2, shape, { type: 'lstm', units: 4 }); } catch (e) { err = e; }
      expect(err).toBeInstanceOf(DptrainError);
      expect((err as DptrainError).code).toBe('DPT_ERR_SHAPE');
      expect((err as DptrainError).message).toContain('layers[2] (lstm)');
      expect((err as DptrainError).message).toContain(`[${shape.join(', ')}]`);
      expect((err as DptrainError).message).toContain('[T, F]');
    }
  });

  it('the last state equals the last step of the sequence output', () => {
    const B = 2, T = 5, F = 3, H = 4;
    const seq = makeLstm(T, F, H, true, 40);
    const last = makeLstm(T, F, H, false, 40);
    const x = randn(B * T * F, 41);
    const ys = seq.layer.forward(x, B, ctx);
    const yl = last.layer.forward(x, B, ctx);
    for (let bi = 0; bi < B; bi++) {
      expect(bits(yl.subarray(bi * H, (bi + 1) * H))).toEqual(bits(ys.subarray((bi * T + T - 1) * H, (bi * T + T) * H)));
    }
  });

  for (const returnSequences of [true, false]) {
    it(`backward accumulates into the gradients and overwrites dx, returnSequences ${returnSequences}`, () => {
      const B = 2, T = 3, F = 2, H = 3;
      const m = makeLstm(T, F, H, returnSequences, 50);
      const x = randn(B * T * F, 51);
      const dy = randn(B * sizeOf(m.layer.outShape), 52);
      const fresh = runOnce(m, x, B, dy);
      for (const gi of m.g) gi.fill(0.25);
      m.layer.forward(x, B, ctx);
      const dx1 = m.layer.backward(dy, B, true)!.slice();
      m.layer.backward(dy, B, true);
      const dx2 = m.layer.backward(dy, B, false);
      expect(dx2).toBeNull();
      expect(bits(dx1)).toEqual(bits(fresh.dx));
      m.g.forEach((gi, k) => {
        for (let i = 0; i < gi.length; i++) expect(gi[i]).toBeCloseTo(0.25 + 3 * fresh.g[k][i], 5);
      });
    });

    it(`a batch computed whole equals its rows computed in two calls, bit for bit, returnSequences ${returnSequences}`, () => {
      const B = 5, B1 = 2, T = 4, F = 3, H = 6;
      const m = makeLstm(T, F, H, returnSequences, 60);
      const O = sizeOf(m.layer.outShape);
      const x = randn(B * T * F, 61);
      const dy = randn(B * O, 62);
      const whole = runOnce(m, x, B, dy);

      for (const gi of m.g) gi.fill(0);
      const y = new Float32Array(B * O), dx = new Float32Array(B * T * F);
      const parts: [number, number][] = [[0, B1], [B1, B]];
      for (const [r0, r1] of parts) {
        const n = r1 - r0;
        y.set(m.layer.forward(x.slice(r0 * T * F, r1 * T * F), n, ctx), r0 * O);
        dx.set(m.layer.backward(dy.slice(r0 * O, r1 * O), n, true)!, r0 * T * F);
      }
      expect(bits(y)).toEqual(bits(whole.y));
      expect(bits(dx)).toEqual(bits(whole.dx));
      // Gradients summed over rows [0, B1) then [B1, B) equal one sum over [0, B).
      m.g.forEach((gi, k) => expect(bits(gi)).toEqual(bits(whole.g[k])));
    });
  }

  it('refuses a backward whose batch does not match the last forward', () => {
    const m = makeLstm(3, 2, 4, false, 70);
    m.layer.forward(randn(2 * 3 * 2, 71), 2, ctx);
    expect(() => m.layer.backward(new Float32Array(3 * 4), 3, true)).toThrow(/layers\[0\] \(lstm\)/);
  });
});
