// Shared by the model-file tests: a model with every layer type, seeded
// random weights (biases and BatchNorm statistics included, so nothing is a
// default value), and an eval-mode predict.
import { buildModel, initModel, type Model } from '../../src/model/model.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { uniform } from '../../src/random/counter.js';

export const EVAL = { training: false, seed: 0, step: 0, rowOffset: 0 } as const;

/** Every layer type: lstm, batchnorm over [T, F], gru (both output modes), flatten, reshape, dense with and without bias, dropout, every activation. */
export const EVERY_LAYER_SPEC: ModelSpec = {
  inputShape: [5, 4],
  layers: [
    { type: 'lstm', units: 6, returnSequences: true },
    { type: 'batchnorm', momentum: 0.2, eps: 1e-3 },
    { type: 'gru', units: 3, returnSequences: true },
    { type: 'flatten' },
    { type: 'dense', units: 8, activation: 'tanh', l2: 1e-4 },
    { type: 'dropout', rate: 0.3 },
    { type: 'reshape', shape: [2, 4] },
    { type: 'gru', units: 5 },
    { type: 'dense', units: 7, activation: 'relu', useBias: false },
    { type: 'batchnorm' },
    { type: 'sigmoid' },
    { type: 'dense', units: 6 },
    { type: 'tanh' },
    { type: 'dense', units: 3 },
    { type: 'relu' },
    { type: 'dense', units: 4, activation: 'softmax' },
  ],
};

/**
 * initModel (Glorot weights), then scale the weight matrices by `gain` and
 * give every bias, BatchNorm parameter and statistic a seeded value, so
 * nothing is a default: biases and beta in [-0.2, 0.2], gamma in [0.5, 1.5],
 * running means in [-0.5, 0.5], running variances in [0.5, 1.5].
 */
export function randomModel(spec: ModelSpec, seed: number, gain = 1.5): Model {
  const model = buildModel(spec);
  initModel(model, seed);
  model.entries.forEach((e, k) => {
    for (let i = 0; i < e.size; i++) {
      const u = uniform(seed, 77, k, i);
      const at = e.offset + i;
      if (e.shape.length === 2 || e.shape.length === 4) model.params[at] *= gain; // weight matrices and filters
      else if (e.name === 'gamma' || e.name === 'running_var') model.params[at] = 0.5 + u;
      else if (e.name === 'running_mean') model.params[at] = u - 0.5;
      else model.params[at] = 0.4 * u - 0.2;
    }
  });
  return model;
}

export function randomInput(model: Model, batch: number, seed: number): Float32Array {
  const x = new Float32Array(batch * model.inSize);
  for (let i = 0; i < x.length; i++) x[i] = 4 * uniform(seed, 991, i) - 2;
  return x;
}

/** Eval-mode predictions, copied out of the last layer's buffer. */
export function predict(model: Model, x: Float32Array, batch: number): Float32Array {
  return model.forward(x, batch, EVAL).slice();
}

export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export function argmaxRows(y: ArrayLike<number>, rows: number, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (y[r * cols + c] > y[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

/** Image models for the export tests: every conv/pool option the exporters map, and the flatten permutation. */
export const CNN_SPECS: Record<string, ModelSpec> = {
  // The benchmark CNN's shape: valid convolutions, 2x2 max pools, a Dense after the flatten.
  lenet: {
    inputShape: [1, 14, 14],
    layers: [
      { type: 'conv2d', filters: 4, kernelSize: 3, activation: 'relu' },
      { type: 'maxpool2d', poolSize: 2 },
      { type: 'conv2d', filters: 6, kernelSize: 3, activation: 'relu' },
      { type: 'maxpool2d', poolSize: 2 },
      { type: 'flatten' },
      { type: 'dropout', rate: 0.3 },
      { type: 'dense', units: 5 },
    ],
  },
  // Three input channels, 'same' with a stride, explicit padding, dilation, average pooling, batchnorm after the flatten.
  options: {
    inputShape: [3, 11, 9],
    layers: [
      { type: 'conv2d', filters: 5, kernelSize: 3, stride: 2, padding: 'same', activation: 'tanh' },
      { type: 'conv2d', filters: 4, kernelSize: [3, 2], padding: [1, 2], dilation: [1, 2], useBias: false },
      { type: 'avgpool2d', poolSize: 2, stride: 1, padding: 1 },
      { type: 'maxpool2d', poolSize: 3, stride: 2, padding: 'same' },
      { type: 'flatten' },
      { type: 'batchnorm' },
      { type: 'dense', units: 6, activation: 'relu' },
      { type: 'dense', units: 4, activation: 'softmax' },
    ],
  },
  // An image out; uneven 'same' padding (an even window: PyTorch's padding='same'; with a stride: a pad module in front).
  imageOut: {
    inputShape: [2, 6, 7],
    layers: [
      { type: 'conv2d', filters: 3, kernelSize: 3, padding: 'same', activation: 'sigmoid' },
      { type: 'conv2d', filters: 3, kernelSize: 2, padding: 'same' },
      { type: 'conv2d', filters: 2, kernelSize: 2, stride: 2, padding: 'same' },
      { type: 'avgpool2d', poolSize: 2, countIncludePad: false },
    ],
  },
};

/** Batch normalization on every axis choice the exporters map (PyTorch BatchNorm1d/2d, TF.js BatchNormalization axis 3, 1, -1). */
export const BATCHNORM_SPECS: Record<string, ModelSpec> = {
  // Per channel: on the input image itself (TF.js: a Permute in front), after convolutions, then on the flat features.
  image: {
    inputShape: [3, 10, 9],
    layers: [
      { type: 'batchnorm' },
      { type: 'conv2d', filters: 6, kernelSize: 3, useBias: false },
      { type: 'batchnorm', momentum: 0.2, eps: 1e-3 },
      { type: 'relu' },
      { type: 'maxpool2d', poolSize: 2 },
      { type: 'conv2d', filters: 4, kernelSize: 3, padding: 'same' },
      { type: 'batchnorm' },
      { type: 'flatten' },
      { type: 'batchnorm' },
      { type: 'dense', units: 5 },
    ],
  },
  // An image out, normalized per channel last (TF.js: the Permute back after it).
  imageOut: {
    inputShape: [2, 6, 5],
    layers: [{ type: 'conv2d', filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh' }, { type: 'batchnorm', eps: 1e-4 }],
  },
  // An image normalized on its last axis (axis 'last'): PyTorch's BatchNorm2d of x.movedim(-1, 1), TF.js's axis 3 of NCHW.
  // After a convolution too (TF.js: a Permute back to NCHW in front, and to NHWC again for the next one).
  imageLast: {
    inputShape: [3, 6, 5],
    layers: [
      { type: 'batchnorm', axis: 'last', momentum: 0.05 },
      { type: 'conv2d', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' },
      { type: 'batchnorm', axis: 'last' },
      { type: 'conv2d', filters: 2, kernelSize: 3 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
    ],
  },
  // A sequence [T, F] on its channels (PyTorch's BatchNorm1d on (N, C, L)), then on its last axis.
  sequence: {
    inputShape: [4, 6],
    layers: [
      { type: 'batchnorm', axis: 'channels' },
      { type: 'dense', units: 5, activation: 'tanh' },
      { type: 'batchnorm', momentum: 0.3 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
    ],
  },
};

/** Batch normalization of inputs with 4 and 5 axes per sample: PyTorch only (BatchNorm3d, BatchNorm1d of x.flatten(2)); TF.js refuses them. */
export const BATCHNORM_TORCH_SPECS: Record<string, ModelSpec> = {
  volume: {
    inputShape: [2, 3, 4, 5],
    layers: [{ type: 'batchnorm' }, { type: 'batchnorm', axis: 'last', eps: 1e-3 }, { type: 'flatten' }, { type: 'dense', units: 4 }],
  },
  rank5: {
    inputShape: [2, 2, 3, 2, 3],
    layers: [{ type: 'batchnorm' }, { type: 'tanh' }, { type: 'batchnorm', axis: 'last' }, { type: 'flatten' }, { type: 'dense', units: 4 }],
  },
};
