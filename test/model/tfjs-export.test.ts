// The TensorFlow.js export, checked against TensorFlow.js itself: write the
// folder, load it with tf.loadLayersModel through an IOHandler that reads the
// files, predict, and compare with our eval-mode forward.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Model } from '../../src/model/model.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { exportTfjs, type TfjsModelJson } from '../../src/model/tfjs-export.js';
import { writeTfjsModel } from '../../coordinator/run/model-files.js';
import { argmaxRows, BATCHNORM_SPECS, BATCHNORM_TORCH_SPECS, CNN_SPECS, predict, randomInput, randomModel } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'dptrain-tfjs-'));
beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An IOHandler that reads model.json and the weight files it names from `folder`. */
function fileHandler(folder: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8')) as TfjsModelJson;
      const groups = json.weightsManifest;
      const parts = groups.flatMap((g) => g.paths.map((p) => readFileSync(join(folder, p))));
      const total = parts.reduce((n, p) => n + p.length, 0);
      const weightData = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        weightData.set(p, at);
        at += p.length;
      }
      return {
        modelTopology: json.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
        weightSpecs: groups.flatMap((g) => g.weights),
        weightData: weightData.buffer,
        format: json.format,
        generatedBy: json.generatedBy,
      };
    },
  };
}

async function exportAndLoad(model: Model, name: string): Promise<tf.LayersModel> {
  const folder = join(dir, name);
  writeTfjsModel(folder, model);
  return tf.loadLayersModel(fileHandler(folder), { strict: true });
}

function tfPredict(net: tf.LayersModel, model: Model, x: Float32Array, batch: number): Float32Array {
  return tf.tidy(() => {
    const y = net.predict(tf.tensor(x, [batch, ...model.inShape])) as tf.Tensor;
    expect(y.shape).toEqual([batch, ...model.outShape]);
    return y.dataSync() as Float32Array;
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const MLP: ModelSpec = {
  inputShape: [10],
  layers: [{ type: 'dense', units: 16, activation: 'relu' }, { type: 'dense', units: 5, activation: 'softmax' }],
};
const BATCHNORM_DROPOUT: ModelSpec = {
  inputShape: [2, 4],
  layers: [
    { type: 'flatten' },
    { type: 'dense', units: 12 },
    { type: 'batchnorm', momentum: 0.2, eps: 1e-3 },
    { type: 'relu' },
    { type: 'dropout', rate: 0.4 },
    { type: 'dense', units: 9, activation: 'sigmoid', useBias: false },
    { type: 'batchnorm' },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};
const LSTM: ModelSpec = {
  inputShape: [18],
  layers: [
    { type: 'reshape', shape: [6, 3] },
    { type: 'dense', units: 5 },   // per timestep, on [6, 3]
    { type: 'batchnorm', momentum: 0.3 }, // over the last axis of [6, 5]
    { type: 'lstm', units: 8, returnSequences: true },
    { type: 'tanh' },
    { type: 'lstm', units: 5 },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};
const GRU: ModelSpec = {
  inputShape: [7, 3],
  layers: [{ type: 'gru', units: 6 }, { type: 'dense', units: 4, activation: 'softmax' }],
};

describe('exportTfjs', () => {
  test('model.json: a Keras Sequential with batch_input_shape and tfjs weight names', () => {
    const { modelJson, weightsBin } = exportTfjs(randomModel(LSTM, 1));
    expect(modelJson.format).toBe('layers-model');
    const layers = modelJson.modelTopology.config.layers;
    expect(modelJson.modelTopology.class_name).toBe('Sequential');
    expect(layers.map((l) => l.class_name)).toEqual(['Reshape', 'Dense', 'BatchNormalization', 'LSTM', 'Activation', 'LSTM', 'Dense', 'Activation']);
    expect(layers[0].config.batch_input_shape).toEqual([null, 18]);
    expect(layers[3].config.recurrent_activation).toBe('sigmoid');
    const weights = modelJson.weightsManifest[0].weights;
    expect(modelJson.weightsManifest[0].paths).toEqual(['weights.bin']);
    expect(weights.map((w) => `${w.name} [${w.shape.join(', ')}]`)).toEqual([
      'dense_1/kernel [3, 5]', 'dense_1/bias [5]',
      'batch_normalization_1/gamma [5]', 'batch_normalization_1/beta [5]',
      'batch_normalization_1/moving_mean [5]', 'batch_normalization_1/moving_variance [5]',
      'lstm_1/kernel [5, 32]', 'lstm_1/recurrent_kernel [8, 32]', 'lstm_1/bias [32]',
      'lstm_2/kernel [8, 20]', 'lstm_2/recurrent_kernel [5, 20]', 'lstm_2/bias [20]',
      'dense_2/kernel [5, 4]', 'dense_2/bias [4]',
    ]);
    expect(weights.every((w) => w.dtype === 'float32')).toBe(true);
    const floats = weights.reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
    expect(weightsBin.length).toBe(4 * floats);
  });

  test('batch normalization: Keras momentum is 1 - ours, statistics become moving_*', () => {
    const { modelJson } = exportTfjs(randomModel(BATCHNORM_DROPOUT, 2));
    const bn = modelJson.modelTopology.config.layers.find((l) => l.class_name === 'BatchNormalization')!;
    expect(bn.config).toMatchObject({ name: 'batch_normalization_1', axis: -1, epsilon: 1e-3 });
    expect(bn.config.momentum).toBeCloseTo(0.8, 12);
    expect(modelJson.weightsManifest[0].weights.map((w) => w.name)).toContain('batch_normalization_2/moving_variance');
  });

  test('image models: a Permute to NHWC, HWIO kernels, padding as TF says it, the Dense rows after the flatten permuted', () => {
    const model = randomModel(CNN_SPECS.lenet, 5);
    const { modelJson, weightsBin } = exportTfjs(model);
    const layers = modelJson.modelTopology.config.layers;
    expect(layers.map((l) => l.class_name)).toEqual([
      'Permute', 'Conv2D', 'Activation', 'MaxPooling2D', 'Conv2D', 'Activation', 'MaxPooling2D', 'Flatten', 'Dropout', 'Dense',
    ]);
    expect(layers[0].config).toMatchObject({ dims: [2, 3, 1], batch_input_shape: [null, 1, 14, 14] });
    expect(layers[1].config).toMatchObject({ filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'valid', data_format: 'channels_last' });
    const weights = modelJson.weightsManifest[0].weights;
    expect(weights.map((w) => `${w.name} [${w.shape.join(', ')}]`)).toEqual([
      'conv2d_1/kernel [3, 3, 1, 4]', 'conv2d_1/bias [4]', 'conv2d_2/kernel [3, 3, 4, 6]', 'conv2d_2/bias [6]', 'dense_1/kernel [24, 5]', 'dense_1/bias [5]',
    ]);
    // Kernel [i, j, c, o] = our W[o, c, i, j]; the dense row of Keras feature (h, w, c) = our row (c, h, w).
    const floats = new Float32Array(weightsBin.buffer.slice(weightsBin.byteOffset, weightsBin.byteOffset + weightsBin.byteLength));
    const W2 = model.entries.find((e) => e.specIndex === 2 && e.name === 'W')!;
    expect(floats[4 + 36 + ((1 * 3 + 2) * 4 + 3) * 6 + 5]).toBe(model.params[W2.offset + ((5 * 4 + 3) * 3 + 1) * 3 + 2]);
    const D = model.entries.find((e) => e.specIndex === 6 && e.name === 'W')!;
    const dense = 4 + 36 + 6 + 216;
    const [h, w, c] = [1, 0, 4]; // of a [6, 2, 2] tensor
    expect(floats[dense + ((h * 2 + w) * 6 + c) * 5 + 3]).toBe(model.params[D.offset + ((c * 2 + h) * 2 + w) * 5 + 3]);
    const options = exportTfjs(randomModel(CNN_SPECS.options, 6)).modelJson.modelTopology.config.layers;
    expect(options.map((l) => l.class_name)).toEqual([
      'Permute', 'Conv2D', 'Activation', 'ZeroPadding2D', 'Conv2D', 'ZeroPadding2D', 'AveragePooling2D', 'MaxPooling2D',
      'Flatten', 'BatchNormalization', 'Dense', 'Activation', 'Dense', 'Activation',
    ]);
    expect(options[1].config).toMatchObject({ strides: [2, 2], padding: 'same' });
    expect(options[3].config).toMatchObject({ padding: [[1, 1], [2, 2]] });
    expect(options[4].config).toMatchObject({ padding: 'valid', dilation_rate: [1, 2], use_bias: false });
    const imageOut = exportTfjs(randomModel(CNN_SPECS.imageOut, 7)).modelJson.modelTopology.config.layers;
    expect(imageOut.map((l) => l.class_name)).toEqual(['Permute', 'Conv2D', 'Activation', 'Conv2D', 'Conv2D', 'AveragePooling2D', 'Permute']);
    expect(imageOut.map((l) => l.config.padding)).toEqual([undefined, 'same', undefined, 'same', 'same', 'valid', undefined]);
  });

  test('batch normalization per channel: BatchNormalization on axis 3 of the NHWC tensor, on the last axis otherwise', () => {
    const layers = exportTfjs(randomModel(BATCHNORM_SPECS.image, 3)).modelJson.modelTopology.config.layers;
    expect(layers.map((l) => l.class_name)).toEqual([
      'Permute', 'BatchNormalization', 'Conv2D', 'BatchNormalization', 'Activation', 'MaxPooling2D', 'Conv2D', 'BatchNormalization',
      'Flatten', 'BatchNormalization', 'Dense',
    ]);
    expect(layers.filter((l) => l.class_name === 'BatchNormalization').map((l) => l.config.axis)).toEqual([3, 3, 3, -1]);
    expect(layers[3].config).toMatchObject({ epsilon: 1e-3 });
    expect(layers[3].config.momentum).toBeCloseTo(0.8, 12);
    const out = exportTfjs(randomModel(BATCHNORM_SPECS.imageOut, 3)).modelJson.modelTopology.config.layers;
    expect(out.map((l) => l.class_name)).toEqual(['Permute', 'Conv2D', 'Activation', 'BatchNormalization', 'Permute']);
    // TF.js's BatchNormalization is right on the last axis only: the channels of a [C, L] go last and back.
    const seq = exportTfjs(randomModel(BATCHNORM_SPECS.sequence, 3)).modelJson.modelTopology.config.layers;
    expect(seq.map((l) => l.class_name)).toEqual(['Permute', 'BatchNormalization', 'Permute', 'Dense', 'Activation', 'BatchNormalization', 'Flatten', 'Dense']);
    expect(seq[0].config).toMatchObject({ dims: [2, 1], batch_input_shape: [null, 4, 6] });
    expect(seq.filter((l) => l.class_name === 'BatchNormalization').map((l) => l.config.axis)).toEqual([-1, -1]);
    // On the last axis of an image: axis 3 of the NCHW tensor, back from NHWC after a convolution.
    const last = exportTfjs(randomModel(BATCHNORM_SPECS.imageLast, 3)).modelJson.modelTopology.config.layers;
    expect(last.map((l) => l.class_name === 'Permute' ? `Permute${JSON.stringify(l.config.dims)}` : l.class_name)).toEqual([
      'BatchNormalization', 'Permute[2,3,1]', 'Conv2D', 'Activation', 'Permute[3,1,2]', 'BatchNormalization', 'Permute[2,3,1]', 'Conv2D', 'Flatten', 'Dense',
    ]);
    expect(last.filter((l) => l.class_name === 'BatchNormalization').map((l) => l.config.axis)).toEqual([3, 3]);
  });

  test('image layers that TF.js cannot say are refused with DPT_ERR_MODEL_FILE', () => {
    const maxPadded: ModelSpec = { inputShape: [1, 6, 6], layers: [{ type: 'maxpool2d', poolSize: 3, stride: 1, padding: 1 }, { type: 'flatten' }] };
    expect(() => exportTfjs(randomModel({ ...maxPadded, layers: [{ type: 'maxpool2d', poolSize: 2, padding: 1 }, { type: 'flatten' }] }, 1)))
      .toThrow(/layer 0 \(maxpool2d\): padding 1,1,1,1 .* has no TensorFlow.js form/);
    expect(() => exportTfjs(randomModel({ inputShape: [2, 5, 5], layers: [{ type: 'conv2d', filters: 2, kernelSize: 3 }, { type: 'dense', units: 3 }] }, 1)))
      .toThrow(/layer 1 \(dense\): on an image in TF.js's NHWC layout/);
    expect(() => exportTfjs(randomModel({ inputShape: [2, 3, 4, 5], layers: [{ type: 'batchnorm' }, { type: 'flatten' }] }, 1)))
      .toThrow(/layer 0 \(batchnorm\): TensorFlow.js normalizes inputs of at most 3 axes per sample/);
    for (const spec of Object.values(BATCHNORM_TORCH_SPECS)) {
      expect(() => exportTfjs(randomModel(spec, 1))).toThrow(expect.objectContaining({ code: 'DPT_ERR_MODEL_FILE', message: expect.stringMatching(/^layer 0 \(batchnorm\)/) }));
    }
  });

  const cases: [string, ModelSpec][] = [
    ['mlp', MLP], ['batchnorm+dropout', BATCHNORM_DROPOUT], ['lstm', LSTM],
    ...Object.entries(CNN_SPECS).map(([name, spec]): [string, ModelSpec] => [`cnn ${name}`, spec]),
    ...Object.entries(BATCHNORM_SPECS).map(([name, spec]): [string, ModelSpec] => [`batchnorm ${name}`, spec]),
  ];
  for (const [name, spec] of cases) {
    test(`tf.loadLayersModel predicts like us: ${name}`, async () => {
      const model = randomModel(spec, name === 'cnn options' ? 33 : 32); // seeds whose 16 inputs fall in more than one class
      const net = await exportAndLoad(model, name);
      const B = 16;
      const x = randomInput(model, B, 32);
      const ours = predict(model, x, B);
      const theirs = tfPredict(net, model, x, B);
      expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-4);
      if (model.outShape.length === 1) {
        const classes = argmaxRows(ours, B, model.outSize);
        expect(new Set(classes).size, 'the inputs should not all fall in one class').toBeGreaterThan(1);
        expect(argmaxRows(theirs, B, model.outSize)).toEqual(classes);
      }
      net.dispose();
    });
  }

  describe('gru', () => {
    const model = randomModel(GRU, 41);
    const { modelJson, weightsBin } = exportTfjs(model);

    test('exports the Keras reset_after GRU: kernel [F, 3H], recurrent_kernel [H, 3H], bias [2, 3H]', () => {
      const gru = modelJson.modelTopology.config.layers[0];
      expect(gru.class_name).toBe('GRU');
      expect(gru.config).toMatchObject({ name: 'gru_1', units: 6, reset_after: true, recurrent_activation: 'sigmoid', batch_input_shape: [null, 7, 3] });
      expect(modelJson.weightsManifest[0].weights.slice(0, 3)).toEqual([
        { name: 'gru_1/kernel', shape: [3, 18], dtype: 'float32' },
        { name: 'gru_1/recurrent_kernel', shape: [6, 18], dtype: 'float32' },
        { name: 'gru_1/bias', shape: [2, 18], dtype: 'float32' },
      ]);
    });

    // NOTE: TensorFlow.js 4.22's GRUCell refuses reset_after=true, and its
    // reset_after=false GRU is a different function from ours (PyTorch's).
    // If this starts passing, tfjs gained reset_after: compare predictions.
    test('tf.loadLayersModel in tfjs 4.22 refuses reset_after (known limitation)', async () => {
      await expect(exportAndLoad(model, 'gru')).rejects.toThrow(/reset_after/);
    });

    test('the exported weights, run through the Keras reset_after GRU equations in tf ops, predict like us', () => {
      const B = 16, T = 7, F = 3, H = 6;
      const x = randomInput(model, B, 42);
      const ours = predict(model, x, B);
      const specs = modelJson.weightsManifest[0].weights;
      const floats = new Float32Array(weightsBin.buffer.slice(weightsBin.byteOffset, weightsBin.byteOffset + weightsBin.byteLength));
      const w: Record<string, tf.Tensor> = {};
      let at = 0;
      for (const s of specs) {
        const n = s.shape.reduce((a, b) => a * b, 1);
        w[s.name] = tf.tensor(floats.subarray(at, at + n), s.shape);
        at += n;
      }
      const theirs = tf.tidy(() => {
        // Keras GRUCell, reset_after=True: the bias rows are (input, recurrent), gates (z, r, h).
        const [bIn, bRec] = tf.unstack(w['gru_1/bias']);
        const xs = tf.tensor(x, [B, T, F]);
        let h: tf.Tensor = tf.zeros([B, H]);
        for (let t = 0; t < T; t++) {
          const xt = xs.slice([0, t, 0], [B, 1, F]).reshape([B, F]);
          const mx = tf.add(tf.matMul(xt, w['gru_1/kernel']), bIn);
          const mh = tf.add(tf.matMul(h, w['gru_1/recurrent_kernel']), bRec);
          const [xz, xr, xh] = tf.split(mx, 3, 1);
          const [hz, hr, hh] = tf.split(mh, 3, 1);
          const z = tf.sigmoid(tf.add(xz, hz));
          const r = tf.sigmoid(tf.add(xr, hr));
          const n = tf.tanh(tf.add(xh, tf.mul(r, hh)));
          h = tf.add(tf.mul(z, h), tf.mul(tf.sub(1, z), n));
        }
        const logits = tf.add(tf.matMul(h, w['dense_1/kernel']), w['dense_1/bias']);
        return tf.softmax(logits).dataSync() as Float32Array;
      });
      for (const t of Object.values(w)) t.dispose();
      expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-4);
      const classes = argmaxRows(ours, B, 4);
      expect(new Set(classes).size, 'the inputs should not all fall in one class').toBeGreaterThan(1);
      expect(argmaxRows(theirs, B, 4)).toEqual(classes);
    });
  });
});
