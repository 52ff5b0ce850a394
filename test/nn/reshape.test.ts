import { describe, expect, it } from 'vitest';
import { DptrainError } from '../../src/errors.js';
import { createFlatten, createReshape } from '../../src/nn/reshape.js';
import { EVAL, randn, trainCtx } from './layer-harness.js';

describe('flatten', () => {
  it('maps [T, F] to [T * F] and hands the buffers through (no copy)', () => {
    const layer = createFlatten(3, [4, 5]);
    expect(layer.type).toBe('flatten');
    expect(layer.outShape).toEqual([20]);
    expect(layer.params).toEqual([]);
    const x = randn(40, 1), dy = randn(40, 2);
    expect(layer.forward(x, 2, trainCtx())).toBe(x);
    expect(layer.backward(dy, 2, true)).toBe(dy);
    expect(layer.backward(dy, 2, false)).toBeNull();
  });

  it('passes only the first batch * size floats of a longer buffer', () => {
    const layer = createFlatten(0, [3]);
    const x = randn(9, 3);
    const y = layer.forward(x, 2, EVAL);
    expect(y.length).toBe(6);
    expect(y.buffer).toBe(x.buffer);
    expect([...y]).toEqual([...x.subarray(0, 6)]);
  });
});

describe('reshape', () => {
  it('maps [12] to [3, 4] and hands the buffers through', () => {
    const layer = createReshape(1, [12], { type: 'reshape', shape: [3, 4] });
    expect(layer.outShape).toEqual([3, 4]);
    const x = randn(36, 4), dy = randn(36, 5);
    expect(layer.forward(x, 3, EVAL)).toBe(x);
    expect(layer.backward(dy, 3, true)).toBe(dy);
  });

  it('refuses a size mismatch, naming both shapes', () => {
    let err: unknown;
    try {
      createReshape(2, [3, 4], { type: 'reshape', shape: [5, 2] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DptrainError);
    expect((err as DptrainError).code).toBe('DPT_ERR_SHAPE');
    expect((err as Error).message).toBe(
      'layers[2] (reshape): cannot reshape [3, 4] (12 elements) to [5, 2] (10 elements); the sizes must be equal',
    );
  });

  it('refuses a too short input and a backward that does not match the forward', () => {
    const layer = createReshape(0, [4], { type: 'reshape', shape: [2, 2] });
    expect(() => layer.forward(new Float32Array(7), 2, EVAL)).toThrow(/layers\[0\] \(reshape\): forward needs 8 floats/);
    layer.forward(new Float32Array(8), 2, EVAL);
    expect(() => layer.backward(new Float32Array(4), 1, true)).toThrow(/does not match the last forward/);
  });
});
