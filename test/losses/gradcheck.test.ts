// Finite-difference checks of every loss's gradient on random inputs kept
// away from the kinks, plus the properties the trainer relies on: dpred is
// overwritten, scales linearly, and a sample gets the same bits whichever
// rows share its call.
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/check/gradcheck.js';
import { getLoss, LOSS_NAMES, type LossName } from '../../src/losses/index.js';
import { CounterStream } from '../../src/random/counter.js';

interface Inputs { pred: Float32Array; target: Float32Array }

interface GradCase {
  n: number;
  D: number;
  make(s: CounterStream, n: number, D: number): Inputs;
  /** Inputs at least this far from every kink (and arg-max tie) pass. */
  ok?(x: Inputs, n: number, D: number): boolean;
}

// NOTE: the losses read float32 but compute (and return) in float64, so a
// central difference with a small step is accurate to O(h^2) and the check
// can be tight: rtol 1e-3 catches a gradient that is 1% off.
const TIGHT = { h: 1e-3, rtol: 1e-3, atol: 1e-6, maxChecks: 1000 };
const GAP = 0.05; // >> 2h: a central difference never straddles a kink

function normals(s: CounterStream, len: number, scale: number): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = scale * s.normal();
  return a;
}

function labels(s: CounterStream, n: number, C: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = i < C ? i : s.int(C); // every class occurs
  return a;
}

function uniforms(s: CounterStream, len: number, lo: number, hi: number): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = lo + (hi - lo) * s.next();
  return a;
}

/** The top two of (value) over a row are GAP apart. */
function uniqueMax(values: number[]): { arg: number; ok: boolean } {
  let arg = 0;
  for (let j = 1; j < values.length; j++) if (values[j] > values[arg]) arg = j;
  for (let j = 0; j < values.length; j++) if (j !== arg && values[arg] - values[j] < GAP) return { arg, ok: false };
  return { arg, ok: true };
}

function rowOf(a: Float32Array, i: number, D: number): number[] {
  return Array.from(a.subarray(i * D, (i + 1) * D));
}

const classLogits = (scale: number) => (s: CounterStream, n: number, D: number): Inputs =>
  ({ pred: normals(s, n * D, scale), target: labels(s, n, D) });

const CASES: Record<LossName, GradCase> = {
  softmax_cross_entropy: { n: 9, D: 5, make: classLogits(2) },
  softmax_cross_entropy_probs_target: {
    n: 7, D: 4,
    make(s, n, D) {
      const target = uniforms(s, n * D, 0, 1);
      for (let i = 0; i < n; i++) {
        let t = 0;
        for (let j = 0; j < D; j++) t += target[i * D + j];
        for (let j = 0; j < D; j++) target[i * D + j] /= t;
      }
      return { pred: normals(s, n * D, 2), target };
    },
  },
  categorical_cross_entropy_probs: { n: 6, D: 4, make: (s, n, D) => ({ pred: uniforms(s, n * D, 0.2, 1), target: labels(s, n, D) }) },
  categorical_cross_entropy_probs_keras: { n: 6, D: 4, make: (s, n, D) => ({ pred: uniforms(s, n * D, 0.2, 1), target: labels(s, n, D) }) },
  binary_cross_entropy_logits: {
    n: 6, D: 3,
    make(s, n, D) {
      const target = uniforms(s, n * D, 0, 1);
      for (let k = 0; k < target.length; k += 2) target[k] = target[k] < 0.5 ? 0 : 1; // hard and soft targets
      return { pred: normals(s, n * D, 3), target };
    },
  },
  mse: { n: 6, D: 3, make: (s, n, D) => ({ pred: normals(s, n * D, 2), target: normals(s, n * D, 2) }) },
  mae: {
    n: 6, D: 3,
    make: (s, n, D) => ({ pred: normals(s, n * D, 2), target: normals(s, n * D, 2) }),
    ok: ({ pred, target }) => pred.every((p, k) => Math.abs(p - target[k]) > GAP),
  },
  hinge: {
    n: 6, D: 3,
    make(s, n, D) {
      const target = new Float32Array(n * D);
      for (let k = 0; k < target.length; k++) target[k] = s.next() < 0.5 ? -1 : 1;
      return { pred: normals(s, n * D, 1.5), target };
    },
    ok: ({ pred, target }) => pred.every((f, k) => Math.abs(1 - target[k] * f) > GAP),
  },
  categorical_hinge_keras: {
    n: 8, D: 5, make: classLogits(0.7),
    ok({ pred, target }, n, D) {
      for (let i = 0; i < n; i++) {
        const y = target[i], row = rowOf(pred, i, D);
        const values = row.map((f, j) => (j === y ? 0 : f));
        const { arg, ok } = uniqueMax(values);
        if (!ok || Math.abs(values[arg] - row[y] + 1) < GAP) return false;
      }
      return true;
    },
  },
  multiclass_hinge: {
    n: 8, D: 5, make: classLogits(0.7),
    ok({ pred, target }, n, D) {
      for (let i = 0; i < n; i++) {
        const y = target[i], row = rowOf(pred, i, D);
        const values = row.map((f, j) => (j === y ? -Infinity : f));
        const { arg, ok } = uniqueMax(values);
        if (!ok || Math.abs(values[arg] - row[y] + 1) < GAP) return false;
      }
      return true;
    },
  },
  multi_margin_pytorch: {
    n: 8, D: 5, make: classLogits(0.7),
    ok({ pred, target }, n, D) {
      for (let i = 0; i < n; i++) {
        const y = target[i], row = rowOf(pred, i, D);
        for (let j = 0; j < D; j++) if (j !== y && Math.abs(1 - row[y] + row[j]) < GAP) return false;
      }
      return true;
    },
  },
  soft_f1: { n: 12, D: 4, make: classLogits(1.5) },
};

/** Deterministic random inputs for a loss, redrawn until they are away from the kinks. */
function inputsFor(name: LossName, seed: number): Inputs {
  const gc = CASES[name];
  const s = new CounterStream(seed, LOSS_NAMES.indexOf(name));
  for (let attempt = 0; attempt < 1000; attempt++) {
    const x = gc.make(s, gc.n, gc.D);
    if (!gc.ok || gc.ok(x, gc.n, gc.D)) return x;
  }
  throw new Error(`${name}: no input away from the kinks in 1000 draws`);
}

describe('loss gradients by finite differences', () => {
  it.each(LOSS_NAMES.map((name) => ({ name })))('$name', ({ name }) => {
    const loss = getLoss(name);
    const { n, D } = CASES[name];
    for (const seed of [1, 2, 3]) {
      const { pred, target } = inputsFor(name, seed);
      const dpred = new Float32Array(n * D);
      loss.forwardBackward(pred, target, n, D, dpred, 1);
      const scratch = new Float32Array(n * D);
      const r = gradCheck(() => loss.forwardBackward(pred, target, n, D, scratch, 1), pred, dpred, TIGHT);
      expect(r.checked).toBe(n * D);
      expect(r.ok, `seed ${seed}: worst ratio ${r.worstRatio} at ${r.worstIndex}: analytic ${r.analytic}, numeric ${r.numeric}`).toBe(true);
    }
  });
});

describe('the forwardBackward contract', () => {
  it.each(LOSS_NAMES.map((name) => ({ name })))('$name: overwrites dpred, scales linearly, perSample sums to the result', ({ name }) => {
    const loss = getLoss(name);
    const { n, D } = CASES[name];
    const { pred, target } = inputsFor(name, 7);
    const d1 = new Float32Array(n * D).fill(0);
    const per = new Float64Array(n);
    const sum = loss.forwardBackward(pred, target, n, D, d1, 1, per);
    let perSum = 0;
    for (const v of per) perSum += v;
    expect(perSum).toBeCloseTo(sum, 10);
    const dGarbage = new Float32Array(n * D).fill(-77);
    expect(loss.forwardBackward(pred, target, n, D, dGarbage, 1)).toBe(sum);
    expect(Array.from(dGarbage)).toEqual(Array.from(d1));
    const s = 0.37;
    const dScaled = new Float32Array(n * D);
    loss.forwardBackward(pred, target, n, D, dScaled, s);
    for (let k = 0; k < n * D; k++) expect(Math.abs(dScaled[k] - s * d1[k])).toBeLessThanOrEqual(1e-6 * Math.abs(d1[k]) + 1e-12);
    // Buffers longer than needed are fine; the rows beyond n are untouched.
    const long = new Float32Array(n * D + 5).fill(9);
    loss.forwardBackward(pred, target, n, D, long, 1);
    expect(Array.from(long.subarray(n * D))).toEqual([9, 9, 9, 9, 9]);
  });

  it.each(LOSS_NAMES.filter((name) => !getLoss(name).shardLevel).map((name) => ({ name })))(
    '$name: a sample gets the same bits alone or in a batch (micro-shard invariance)', ({ name }) => {
      const loss = getLoss(name);
      const { n, D } = CASES[name];
      const t = loss.targetSize(D);
      const { pred, target } = inputsFor(name, 11);
      const whole = new Float32Array(n * D), perWhole = new Float64Array(n);
      loss.forwardBackward(pred, target, n, D, whole, 1, perWhole);
      const split = 3;
      const a = new Float32Array(split * D), b = new Float32Array((n - split) * D);
      const pa = new Float64Array(split), pb = new Float64Array(n - split);
      loss.forwardBackward(pred.subarray(0, split * D), target.subarray(0, split * t), split, D, a, 1, pa);
      loss.forwardBackward(pred.subarray(split * D), target.subarray(split * t), n - split, D, b, 1, pb);
      expect(Array.from(a).concat(Array.from(b))).toEqual(Array.from(whole));
      expect(Array.from(pa).concat(Array.from(pb))).toEqual(Array.from(perWhole));
    });

  it.each(LOSS_NAMES.map((name) => ({ name })))('$name: n = 0 gives 0 and writes nothing', ({ name }) => {
    const loss = getLoss(name);
    const d = new Float32Array(4).fill(5);
    expect(loss.forwardBackward(new Float32Array(0), new Float32Array(0), 0, 2, d, 1)).toBe(0);
    expect(Array.from(d)).toEqual([5, 5, 5, 5]);
  });
});
