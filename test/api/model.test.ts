// The public model API of dptrain/core (src/api): building from a spec with
// the command line's errors, every input form, the stored scaling, what the
// outputs mean for each kind of loss, model-file bytes and back (with and
// without inference info), evaluation, and choosing the kernels.
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../coordinator/run/config.js';
import { initKernels } from '../../src/api/kernels.js';
import { createModel, loadModel, type DptrainModel } from '../../src/api/model.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { saveModel } from '../../src/model/save.js';
import { useKernels } from '../../src/tensor/setup.js';
import { evaluate } from '../../src/train/evaluate.js';
import { getLoss } from '../../src/losses/index.js';
import { uniform } from '../../src/random/counter.js';
import { wasmBytes } from '../tensor/wasm-helpers.js';

const SPEC = { inputShape: [3], layers: [{ type: 'dense' as const, units: 8, activation: 'tanh' as const }, { type: 'dense' as const, units: 4 }] };
const NAMES = { featureNames: ['a', 'b', 'c'], classNames: ['w', 'x', 'y', 'z'] };

function rowsOf(n: number, seed: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: 3 }, (_, j) => 4 * uniform(seed, 0, i * 3 + j) - 2));
}

function bits(a: Float32Array): number[] {
  return Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
}

function codeOf(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

afterAll(() => useKernels(null));

describe('createModel', () => {
  it('refuses a bad spec with the line the command line prints for it in a config', () => {
    const bad = { inputShape: [3], layers: [{ type: 'dense', units: 0 }] };
    const api = codeOf(() => createModel(bad as never, { loss: 'softmax_cross_entropy' }));
    const cli = codeOf(() => parseConfig({ data: { type: 'mnist' }, model: bad, loss: 'mse', optimizer: { lr: 0.1 }, epochs: 1, batchSize: 1 }, 'x.json'));
    expect(api).toEqual({ code: 'DPT_ERR_MODEL_SPEC', message: 'model.layers[0].units: expected a positive integer' });
    expect(cli.message.split('\n')).toContain(api.message);
    expect(codeOf(() => createModel({ inputShape: [3], layers: [{ type: 'lstm', units: 2 }] }, { loss: 'mse' })).code).toBe('DPT_ERR_SHAPE');
  });

  it('refuses bad options naming them', () => {
    expect(codeOf(() => createModel(SPEC, { loss: 'nope' as never }))).toEqual({
      code: 'DPT_ERR_CONFIG', message: expect.stringMatching(/^options\.loss: must be one of "softmax_cross_entropy", /),
    });
    expect(codeOf(() => createModel(SPEC, { loss: 'softmax_cross_entropy', classNames: ['p', 'q'] })).message).toBe('options.classNames: 2 names for 4 classes');
    expect(codeOf(() => createModel(SPEC, { loss: 'softmax_cross_entropy', featureNames: ['a', 'a', 'b'] })).message).toBe('options.featureNames[1]: "a" appears twice');
    expect(codeOf(() => createModel(SPEC, { loss: 'mse', classNames: ['p', 'q', 'r', 's'] })).message).toBe('options.classNames: the model predicts values, not classes');
  });

  it('initializes the weights from the seed as training does', () => {
    const a = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 5 });
    const model = buildModel(SPEC);
    initModel(model, 5);
    const x = rowsOf(4, 1);
    const outputs = model.forward(Float32Array.from(x.flat()), 4, { training: false, seed: 0, step: 0, rowOffset: 0 });
    expect(bits(a.predict(x).outputs)).toEqual(bits(outputs.subarray(0, 16)));
    expect(a.parameterCount).toBe(3 * 8 + 8 + 8 * 4 + 4);
  });
});

describe('predict', () => {
  const scaling = { mean: [1, -2, 0.5], scale: [2, 0.5, 3] };
  const model = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 2, ...NAMES, scaling });
  const rows = rowsOf(9, 3);

  it('takes a flat array, rows, typed rows or named rows alike, and any batch size', () => {
    const ref = model.predict(rows);
    const named = rows.map((r) => ({ c: r[2], extra: 7, a: r[0], b: r[1] }));
    for (const input of [rows.flat(), Float64Array.from(rows.flat()), rows.map((r) => Float64Array.from(r)), named]) {
      expect(bits(model.predict(input).outputs)).toEqual(bits(ref.outputs));
    }
    for (const batchSize of [1, 4, 9]) expect(bits(model.predict(rows, { batchSize }).outputs)).toEqual(bits(ref.outputs));
  });

  it('applies the stored scaling in float64, as the CSV loader does', () => {
    const scaled = rows.map((r) => r.map((v, j) => Math.fround((v - scaling.mean[j]) / scaling.scale[j])));
    expect(bits(model.predict(rows).outputs)).toEqual(bits(model.predict(scaled, { scaleInput: false }).outputs));
    expect(bits(model.predict(rows).outputs)).not.toEqual(bits(model.predict(rows, { scaleInput: false }).outputs));
  });

  it('refuses inputs of the wrong shape or with values that are not finite numbers, naming the row and the feature', () => {
    expect(codeOf(() => model.predict([1, 2, 3, 4]))).toEqual({ code: 'DPT_ERR_SHAPE', message: "predict: a flat input holds 4 values, not a multiple of the model's 3 per sample" });
    expect(codeOf(() => model.predict([[1, 2, 3], [1, 2]]))).toEqual({ code: 'DPT_ERR_SHAPE', message: 'predict: input row 1 has 2 values; the model reads 3 per sample (a, b, c)' });
    expect(codeOf(() => model.predict([[1, 2, 3], [1, NaN, 3]]))).toEqual({ code: 'DPT_ERR_DATASET', message: 'predict: input row 1, feature "b": NaN is not a finite number' });
    expect(codeOf(() => model.predict([{ a: 1, b: 2 }]))).toEqual({ code: 'DPT_ERR_DATASET', message: 'predict: input row 0 has no feature "c" (the model reads a, b, c)' });
    expect(codeOf(() => model.predict([{ a: 1, b: 2, c: '3' } as never]))).toEqual({ code: 'DPT_ERR_DATASET', message: 'predict: input row 0, feature "c": "3" is not a finite number' });
    const unnamed = createModel(SPEC, { loss: 'softmax_cross_entropy' });
    expect(codeOf(() => unnamed.predict([{ a: 1, b: 2, c: 3 }])).code).toBe('DPT_ERR_SHAPE');
    expect(codeOf(() => model.predict(rows, { batchSize: 0 })).message).toBe('predict options.batchSize: must be > 0, got 0');
  });

  it('names the classes and gives softmax probabilities for a logits loss', () => {
    const p = model.predict(rows);
    if (p.task !== 'classification' || p.probabilities === null) throw new Error('expected class probabilities');
    for (let i = 0; i < p.rows; i++) {
      const out = Array.from(p.outputs.subarray(4 * i, 4 * i + 4));
      const e = out.map((v) => Math.exp(v - Math.max(...out)));
      const probs = Array.from(p.probabilities.subarray(4 * i, 4 * i + 4));
      probs.forEach((q, c) => expect(q).toBeCloseTo(e[c] / e.reduce((s, v) => s + v, 0), 6));
      expect(p.classes[i]).toBe(out.indexOf(Math.max(...out)));
      expect(p.labels[i]).toBe(NAMES.classNames[p.classes[i]]);
    }
  });
});

describe('what the outputs mean, by loss', () => {
  const rows = rowsOf(6, 4);
  const build = (units: number, loss: Parameters<typeof createModel>[1]['loss'], activation?: 'softmax') =>
    createModel({ inputShape: [3], layers: [{ type: 'dense', units, ...(activation === undefined ? {} : { activation }) }] }, { loss, seed: 1 });

  it('probabilities as outputs for a model ending in softmax; none for margin losses', () => {
    const probs = build(3, 'categorical_cross_entropy_probs', 'softmax').predict(rows);
    expect(probs.task === 'classification' && bits(probs.probabilities!)).toEqual(bits(probs.outputs));
    const margin = build(3, 'multiclass_hinge').predict(rows);
    expect(margin.task).toBe('classification');
    if (margin.task === 'classification') {
      expect(margin.probabilities).toBeNull();
      expect(margin.labels).toEqual(Array.from(margin.classes, String));
    }
  });

  it('two classes from one sigmoid output; independent labels and values as regression', () => {
    const binary = build(1, 'binary_cross_entropy_logits').predict(rows);
    if (binary.task !== 'classification') throw new Error('expected classes');
    expect(binary.numClasses).toBe(2);
    for (let i = 0; i < 6; i++) {
      const p = 1 / (1 + Math.exp(-binary.outputs[i]));
      expect(binary.probabilities![2 * i + 1]).toBeCloseTo(p, 6);
      expect(binary.classes[i]).toBe(p > 0.5 ? 1 : 0);
    }
    const labels = build(3, 'binary_cross_entropy_logits').predict(rows);
    expect(labels.task === 'regression' && Array.from(labels.values).every((v, k) => Math.abs(v - 1 / (1 + Math.exp(-labels.outputs[k]))) < 1e-6)).toBe(true);
    const values = build(2, 'mse').predict(rows);
    expect(values.task === 'regression' && bits(values.values)).toEqual(bits(values.outputs));
  });
});

describe('model file bytes', () => {
  const model = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 3, ...NAMES, scaling: { mean: [0.5], scale: [2] } });

  it('round-trip to the same predictions, names and scaling', () => {
    const again: DptrainModel = loadModel(model.toBytes());
    const rows = rowsOf(5, 5);
    expect(bits(again.predict(rows).outputs)).toEqual(bits(model.predict(rows).outputs));
    expect([again.featureNames, again.classNames, again.scaling, again.loss]).toEqual([model.featureNames, model.classNames, model.scaling, model.loss]);
    expect(loadModel(model.toBytes().slice().buffer).spec).toEqual(model.spec);
  });

  it('load a file written without inference info: inputs as given, class ids as names', () => {
    const plain = buildModel(SPEC);
    initModel(plain, 3);
    const loaded = loadModel(saveModel(plain, { loss: 'softmax_cross_entropy' }));
    expect([loaded.featureNames, loaded.classNames, loaded.scaling]).toEqual([null, null, null]);
    const p = loaded.predict(rowsOf(2, 6));
    expect(p.task === 'classification' && p.classNames).toEqual(['0', '1', '2', '3']);
  });

  it('refuse inference info that does not fit the model, and a file without a loss', () => {
    const { tensors, metadata } = decodeSafetensors(model.toBytes());
    const withInfo = (info: unknown) => encodeSafetensors([...tensors], { ...metadata, inference: JSON.stringify(info) });
    expect(codeOf(() => loadModel(withInfo({ classNames: ['p', 'q'] })))).toEqual({
      code: 'DPT_ERR_MODEL_FILE', message: 'model file: __metadata__.inference.classNames: 2 names for 4 classes',
    });
    expect(codeOf(() => loadModel(withInfo({ scaling: { mean: [0], scale: [0] } })))).toEqual({
      code: 'DPT_ERR_MODEL_FILE', message: 'model file: __metadata__.inference.scaling.scale[0]: must not be 0',
    });
    const { loss: _loss, ...noLoss } = metadata;
    expect(codeOf(() => loadModel(encodeSafetensors([...tensors], noLoss))).code).toBe('DPT_ERR_MODEL_FILE');
  });
});

describe('evaluate', () => {
  const model = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 4, ...NAMES });
  const rows = rowsOf(40, 7);
  const ids = rows.map((_, i) => (i * 7) % 4);

  it('gives what training evaluation gives, for class ids or class names', () => {
    const e = model.evaluate(rows, ids);
    expect(model.evaluate(rows, ids.map((c) => NAMES.classNames[c]))).toEqual(e);
    const plain = buildModel(SPEC);
    initModel(plain, 4);
    const ds = { name: 'x', x: Float32Array.from(rows.flat()), y: Float32Array.from(ids), n: 40, xShape: [3], yShape: [], numClasses: 4 };
    expect(e).toEqual(evaluate(plain, getLoss('softmax_cross_entropy'), ds, 1000));
    expect(e.accuracy).toBeGreaterThan(0);
  });

  it('refuses targets that do not fit', () => {
    expect(codeOf(() => model.evaluate(rows, ids.slice(1)))).toEqual({ code: 'DPT_ERR_SHAPE', message: 'evaluate: 39 targets for 40 samples' });
    expect(codeOf(() => model.evaluate(rows, ids.map(() => 'v')))).toEqual({ code: 'DPT_ERR_DATASET', message: 'evaluate: target 0 is "v", not a class of the model (w, x, y, z)' });
    expect(codeOf(() => model.evaluate(rows, ids.map(() => 4))).code).toBe('DPT_ERR_DATASET');
  });
});

describe('initKernels', () => {
  it('computes with the WebAssembly kernels from their bytes, to the same bits as the TypeScript ones for an MLP', async () => {
    const rows = rowsOf(7, 8);
    const ts = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 9 }).predict(rows);
    expect(await initKernels({ wasm: wasmBytes() })).toBe('wasm-simd');
    const wasm = createModel(SPEC, { loss: 'softmax_cross_entropy', seed: 9 }).predict(rows);
    expect(bits(wasm.outputs)).toEqual(bits(ts.outputs));
    expect(await initKernels({ kind: 'ts' })).toBe('typescript');
  });

  it('names a source it cannot use', async () => {
    await expect(initKernels({ wasm: new Uint8Array([0, 97, 115, 109, 9, 9, 9, 9]) })).rejects.toMatchObject({
      code: 'DPT_ERR_KERNELS', message: expect.stringMatching(/^options\.wasm: not the dptrain WebAssembly kernels/),
    });
    await expect(initKernels({ wasm: 'http://127.0.0.1:9/kernels.wasm' })).rejects.toMatchObject({
      code: 'DPT_ERR_KERNELS', message: expect.stringContaining('cannot fetch the kernels from http://127.0.0.1:9/kernels.wasm'),
    });
    await expect(initKernels({ kind: 'gpu' as never })).rejects.toMatchObject({ code: 'DPT_ERR_CONFIG', message: expect.stringContaining('kernels options.kind') });
  });
});
