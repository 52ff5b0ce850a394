// soft_f1: the value against a direct transcription of the TP/FP/FN
// definition, its behaviour at the extremes, its per-micro-shard reduction
// contract, and its gradient.
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/check/gradcheck.js';
import { softF1, softF1Loss } from '../../src/losses/soft-f1.js';
import { CounterStream } from '../../src/random/counter.js';

/** 1 - macro soft-F1, written out from the definition (TP, FP, FN separately). */
function reference(z: Float32Array, y: Float32Array, n: number, C: number, eps = 1e-7): number {
  const tp = new Array<number>(C).fill(0), fp = new Array<number>(C).fill(0), fn = new Array<number>(C).fill(0);
  for (let i = 0; i < n; i++) {
    const row = Array.from(z.subarray(i * C, (i + 1) * C));
    const m = Math.max(...row);
    const e = row.map((v) => Math.exp(v - m));
    const s = e.reduce((a, b) => a + b, 0);
    for (let c = 0; c < C; c++) {
      const p = e[c] / s, t = y[i] === c ? 1 : 0;
      tp[c] += p * t;
      fp[c] += p * (1 - t);
      fn[c] += (1 - p) * t;
    }
  }
  let f1 = 0;
  for (let c = 0; c < C; c++) f1 += (2 * tp[c]) / (2 * tp[c] + fp[c] + fn[c] + eps);
  return 1 - f1 / C;
}

function confident(labels: number[], C: number, correct: boolean, margin = 20): Float32Array {
  const z = new Float32Array(labels.length * C);
  labels.forEach((y, i) => { z[i * C + (correct ? y : (y + 1) % C)] = margin; });
  return z;
}

describe('soft_f1', () => {
  const C = 3;
  const labels = [0, 1, 2, 2, 1, 0, 1];
  const n = labels.length;
  const y = Float32Array.from(labels);

  it('matches the TP / FP / FN definition; the call contributes n * (1 - softF1)', () => {
    const s = new CounterStream(5, 1);
    const z = new Float32Array(n * C);
    for (let k = 0; k < z.length; k++) z[k] = 2 * s.normal();
    const per = new Float64Array(n);
    const sum = softF1.forwardBackward(z, y, n, C, new Float32Array(n * C), 1, per);
    const ref = reference(z, y, n, C);
    expect(sum / n).toBeCloseTo(ref, 12);
    for (const v of per) expect(v).toBe(sum / n);
    expect(ref).toBeGreaterThan(0);
    expect(ref).toBeLessThan(1);
  });

  it('perfect predictions give a loss near 0 and a gradient near 0', () => {
    const d = new Float32Array(n * C);
    const sum = softF1.forwardBackward(confident(labels, C, true), y, n, C, d, 1 / n);
    expect(sum / n).toBeGreaterThanOrEqual(0);
    expect(sum / n).toBeLessThan(1e-6);
    for (const g of d) expect(Math.abs(g)).toBeLessThan(1e-6);
  });

  it('confidently wrong predictions give a loss near 1', () => {
    const sum = softF1.forwardBackward(confident(labels, C, false), y, n, C, new Float32Array(n * C), 1);
    expect(sum / n).toBeGreaterThan(1 - 1e-6);
  });

  it('a class absent from the shard adds the constant 1/C, with no gradient', () => {
    const shard = [0, 1, 1, 0];
    const d = new Float32Array(shard.length * C);
    const sum = softF1.forwardBackward(confident(shard, C, true), Float32Array.from(shard), shard.length, C, d, 1);
    expect(sum / shard.length).toBeCloseTo(1 / C, 6);
    for (const g of d) expect(Math.abs(g)).toBeLessThan(1e-6);
  });

  it('is computed per call: the trainer mean is the size-weighted mean of the shard losses', () => {
    const s = new CounterStream(6, 1);
    const z = new Float32Array(n * C);
    for (let k = 0; k < z.length; k++) z[k] = s.normal();
    const cut = 3;
    const a = softF1.forwardBackward(z.subarray(0, cut * C), y.subarray(0, cut), cut, C, new Float32Array(cut * C), 1);
    const b = softF1.forwardBackward(z.subarray(cut * C), y.subarray(cut), n - cut, C, new Float32Array((n - cut) * C), 1);
    const ra = reference(z.subarray(0, cut * C), y.subarray(0, cut), cut, C);
    const rb = reference(z.subarray(cut * C), y.subarray(cut), n - cut, C);
    expect((a + b) / n).toBeCloseTo((cut * ra + (n - cut) * rb) / n, 12);
  });

  it('passes a finite-difference check, also with another eps', () => {
    for (const loss of [softF1, softF1Loss({ eps: 1e-3 })]) {
      for (const seed of [1, 2]) {
        const s = new CounterStream(seed, 99);
        const N = 10, K = 4;
        const z = new Float32Array(N * K);
        for (let k = 0; k < z.length; k++) z[k] = 1.5 * s.normal();
        const t = new Float32Array(N);
        for (let i = 0; i < N; i++) t[i] = i < K ? i : s.int(K);
        const d = new Float32Array(N * K);
        loss.forwardBackward(z, t, N, K, d, 1);
        const scratch = new Float32Array(N * K);
        const r = gradCheck(() => loss.forwardBackward(z, t, N, K, scratch, 1), z, d, { h: 1e-3, rtol: 1e-3, atol: 1e-6, maxChecks: 1000 });
        expect(r.ok, `worst ratio ${r.worstRatio} at ${r.worstIndex}: ${r.analytic} vs ${r.numeric}`).toBe(true);
      }
    }
  });
});
