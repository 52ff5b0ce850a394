// Every case of regularization.json (README section 5): penalties in
// float64, gradients accumulated into float32 and float64 buffers.
import { describe, expect, it } from 'vitest';
import { compareTensor, F32_TOL, toF32 } from '../../src/check/fixture.js';
import { addL1Grad, addL2Grad, l1Penalty, l2Penalty } from '../../src/optim/regularization.js';
import { loadFixture } from '../helpers/fixtures.js';

const file = loadFixture('regularization.json');

describe('regularization.json', () => {
  it('holds l1 and l2 cases', () => {
    expect(new Set(file.cases.map((c) => c.op))).toEqual(new Set(['l1', 'l2']));
  });

  it.each(file.cases.map((c) => ({ name: `${c.op}: ${c.label}`, c })))('$name', ({ c }) => {
    const lambda = c.config['lambda'] as number;
    const w = toF32(c.params['w']);
    const penalty = c.op === 'l1' ? l1Penalty : l2Penalty;
    const addGrad = c.op === 'l1' ? addL1Grad : addL2Grad;
    const expected = c.grads!['w'];

    const p = compareTensor([penalty(w, lambda)], c.outputs['penalty'], 1e-12, 1e-15);
    expect(p.ok, `penalty: ratio ${p.worstRatio}`).toBe(true);

    const g32 = new Float32Array(w.length);
    addGrad(w, lambda, g32);
    const r32 = compareTensor(g32, expected, F32_TOL.rtol, F32_TOL.atol);
    expect(r32.ok, `float32 grads: ratio ${r32.worstRatio}`).toBe(true);

    const g64 = new Float64Array(w.length);
    addGrad(w, lambda, g64);
    const r64 = compareTensor(g64, expected, 1e-12, 1e-15);
    expect(r64.ok, `float64 grads: ratio ${r64.worstRatio}`).toBe(true);

    // The gradient at an exact zero weight is exactly 0 (L1's kink).
    w.forEach((x, i) => { if (x === 0) expect(g64[i]).toBe(0); });

    // Accumulates: g += grad.
    const acc = new Float64Array(w.length).fill(1);
    addGrad(w, lambda, acc);
    acc.forEach((v, i) => expect(v).toBeCloseTo(1 + g64[i], 14));
  });

  it('refuses a gradient view of another size', () => {
    expect(() => addL1Grad(new Float32Array(3), 0.1, new Float32Array(2))).toThrow(/g has 2 entries, w has 3/);
  });
});
