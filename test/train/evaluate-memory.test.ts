// evaluate() where evalBatchSize rows do not fit the wasm kernels' fixed
// memory: it starts over with half as many rows (and says how many it used),
// instead of failing the run at its first epoch's end (a CNN's outputs for
// 1,000 images are hundreds of megabytes of a 256 MiB memory); prediction
// (forwardInBatches: the API's predict and `dptrain predict`) the same.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/train/evaluate.js';
import { forwardInBatches } from '../../src/infer/predict.js';
import { getLoss } from '../../src/losses/index.js';
import { useKernels } from '../../src/tensor/setup.js';
import type { Model } from '../../src/model/model.js';
import type { Dataset } from '../../src/data/dataset.js';
import { newKernels } from '../tensor/wasm-helpers.js';
import { randomInput, randomModel } from '../model/helpers.js';

const SPEC = { inputShape: [4], layers: [{ type: 'dense', units: 1024, activation: 'relu' }, { type: 'dense', units: 3 }] };
const N = 3000;

describe('evaluate in a small WebAssembly memory', () => {
  // A fresh memory per test: a model keeps its buffers for the largest batch it has seen.
  beforeEach(() => { useKernels(newKernels(16 * 1024 * 1024)); });
  afterAll(() => useKernels(null));

  function data(): Dataset {
    const x = randomInput({ inSize: 4 } as Model, N, 6);
    const y = Float32Array.from({ length: N }, (_, i) => i % 3);
    return { name: 'blobs', x, y, n: N, xShape: [4], yShape: [], numClasses: 3 };
  }

  it('halves the chunk until it fits (3,000 rows of 1,024 floats are 12 MiB of 16), with the bits of that chunk asked for directly', () => {
    const ds = data();
    const loss = getLoss('softmax_cross_entropy');
    const model = randomModel(SPEC as never, 5);
    const big = evaluate(model, loss, ds, N);
    expect(big.batchSize).toBeLessThan(N);
    expect(big.batchSize).toBeGreaterThanOrEqual(N / 8);
    const direct = evaluate(model, loss, ds, big.batchSize);
    expect(direct.batchSize).toBe(big.batchSize);
    expect(big.loss).toBe(direct.loss);
    expect(big.accuracy).toBe(direct.accuracy);
    expect(big.confusion).toEqual(direct.confusion);
    expect(big.samples).toBe(N);
  });

  it('other errors are not retried', () => {
    const ds = data();
    const bad = { ...ds, y: new Float32Array(N).fill(7) }; // class 7 of 3 outputs
    expect(() => evaluate(randomModel(SPEC as never, 5), getLoss('softmax_cross_entropy'), bad, N)).toThrow(/7/);
  });
});

describe('evaluate with room to spare', () => {
  it('says the chunk asked for, also when the data has fewer rows (no reduction to report)', () => {
    useKernels(null);
    const x = randomInput({ inSize: 4 } as Model, 10, 6);
    const ds: Dataset = { name: 'few', x, y: Float32Array.from({ length: 10 }, (_, i) => i % 3), n: 10, xShape: [4], yShape: [], numClasses: 3 };
    expect(evaluate(randomModel(SPEC as never, 5), getLoss('softmax_cross_entropy'), ds, 1000).batchSize).toBe(1000);
  });
});

describe('prediction in a small WebAssembly memory', () => {
  beforeEach(() => { useKernels(newKernels(16 * 1024 * 1024)); });
  afterAll(() => useKernels(null));

  it('goes on with half as many rows from the batch that did not fit: the outputs of a batch size that fits, bit for bit', () => {
    const model = randomModel(SPEC as never, 5);
    const x = randomInput({ inSize: 4 } as Model, N, 6);
    // 3,000 rows of 1,024 floats do not fit 16 MiB; 100 rows do.
    expect(() => model.forward(x, N, { training: false, seed: 0, step: 0, rowOffset: 0 })).toThrow(/DPT_ERR_MEMORY|memory/);
    model.releaseBuffers!();
    const whole = forwardInBatches(model, x, N, N);
    const small = forwardInBatches(model, x, N, 100);
    expect(whole.length).toBe(N * 3);
    expect(Array.from(whole)).toEqual(Array.from(small));
    // Its buffers freed again: a training step's batch still has its room.
    const y = model.forward(x.subarray(0, 256 * 4), 256, { training: true, seed: 1, step: 0, rowOffset: 0 });
    expect(y.length).toBeGreaterThanOrEqual(256 * 3);
  });
});
