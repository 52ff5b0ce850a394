// TensorFlow.js layers-format export: model.json (a Keras Sequential config
// plus the weights manifest) and weights.bin (the float32 weights, little-
// endian, in manifest order), loadable with tf.loadLayersModel.
//
// One Keras layer per layer of model.layers (after activation expansion),
// named <keras_name>_<n> with n counting per class from 1 (dense_1, dense_2,
// activation_1, lstm_1, ...); weights are named <layer>/<weight> as tfjs
// expects. Mapping, ours -> Keras:
//   dense      Dense(activation "linear")   kernel [I, O] = W, bias [O] = b
//   relu...    Activation("relu" | "sigmoid" | "tanh" | "softmax")
//   dropout    Dropout(rate)
//   batchnorm  BatchNormalization(momentum 1 - m, epsilon eps) on the last axis: axis -1
//              (ours on the last axis; on the channels of a [C, L] between two
//              Permute([2, 1])), or 3: ours on the channels of an image, in NHWC,
//              or on its last axis, in NCHW (a Permute in front if need be);
//              more than 3 axes per sample: refused (DPT_ERR_MODEL_FILE)
//                gamma, beta, moving_mean = running_mean, moving_variance = running_var
//   lstm       LSTM(recurrent_activation "sigmoid")
//                kernel [F, 4H] = W_ih, recurrent_kernel [H, 4H] = W_hh, bias [4H] = b
//                (gate order i, f, c, o = ours i, f, g, o)
//   gru        GRU(reset_after true, recurrent_activation "sigmoid")
//                kernel [F, 3H], recurrent_kernel [H, 3H] with the gate blocks
//                permuted from ours (r, z, n) to Keras's (z, r, h), and
//                bias [2, 3H] = [b_ih; b_hh] permuted the same way
//   flatten    Flatten, reshape  Reshape(target_shape)
//   conv2d, maxpool2d, avgpool2d: Conv2D, MaxPooling2D, AveragePooling2D in
//              NHWC, with Permute layers and permuted Dense rows where the
//              layout changes (tfjs-image.ts)
//
// What prediction needs besides the weights (export-info.ts: featureNames,
// scaling {mean, scale}, classNames, loss, outputs, scalingFormula) goes into
// model.json's userDefinedMetadata, which tf.loadLayersModel hands back as
// model.getUserDefinedMetadata().
//
// NOTE: recurrent_activation is written explicitly: tfjs's default is
// hard_sigmoid, Keras 2's is sigmoid; ours is the sigmoid.
// NOTE: TensorFlow.js 4.22's GRUCell throws "GRUCell does not support
// reset_after parameter set to true", and its reset_after=false GRU computes
// (r * h) W_hn, a different function from ours r * (h W_hn + b_hn) (PyTorch's).
// No tfjs built-in GRU computes our GRU, so a model with a GRU exports in the
// Keras form (reset_after true, correct for Keras in Python via the
// tensorflowjs converter) that tf.loadLayersModel in JavaScript refuses.
import { dptError } from '../errors.js';
import { batchNormAxis } from '../nn/batchnorm.js';
import { layerTensors } from './save.js';
import { exportMetadata, type ExportInfo, type ExportMetadata } from './export-info.js';
import { denseFollows, hwcToChw, permuteLayer, permuteRows, windowLayers, type KerasLayerOut } from './tfjs-image.js';
import type { Model } from './model.js';
import type { F32Tensor } from './safetensors.js';

export const TFJS_WEIGHTS_FILE = 'weights.bin';
export const TFJS_MODEL_FILE = 'model.json';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

export interface TfjsModelJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: null;
  modelTopology: {
    class_name: 'Sequential';
    config: { name: string; layers: { class_name: string; config: Record<string, unknown> }[] };
    backend: string;
  };
  weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
  userDefinedMetadata: ExportMetadata;
}

export interface TfjsExport {
  modelJson: TfjsModelJson;
  weightsBin: Uint8Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

const KERAS_CLASS: Record<string, [className: string, baseName: string]> = {
  dense: ['Dense', 'dense'],
  relu: ['Activation', 'activation'],
  sigmoid: ['Activation', 'activation'],
  tanh: ['Activation', 'activation'],
  softmax: ['Activation', 'activation'],
  dropout: ['Dropout', 'dropout'],
  lstm: ['LSTM', 'lstm'],
  gru: ['GRU', 'gru'],
  flatten: ['Flatten', 'flatten'],
  reshape: ['Reshape', 'reshape'],
};

function tensor(tensors: Map<string, F32Tensor>, name: string, where: string): F32Tensor {
  const t = tensors.get(name);
  if (t === undefined) throw new Error(`${where}: the model has no tensor "${name}" (layer layout changed?)`);
  return t;
}

/**
 * Reorders the three H-wide gate blocks of every row of a (rows, 3H) matrix
 * from ours (r, z, n) to Keras's (z, r, h).
 */
export function gruGatesToKeras(a: Float32Array, rows: number, H: number): Float32Array {
  const G = 3 * H;
  const out = new Float32Array(rows * G);
  for (let r = 0; r < rows; r++) {
    const row = r * G;
    for (let j = 0; j < H; j++) {
      out[row + j] = a[row + H + j];        // z
      out[row + H + j] = a[row + j];        // r
      out[row + 2 * H + j] = a[row + 2 * H + j]; // h (our n)
    }
  }
  return out;
}

/** Builds model.json (as an object) and weights.bin for tf.loadLayersModel; `info` fills userDefinedMetadata. */
export function exportTfjs(model: Model, info: ExportInfo = { inference: null }): TfjsExport {
  const kerasLayers: { class_name: string; config: Record<string, unknown> }[] = [];
  const weights: TfjsWeightSpec[] = [];
  const blobs: Float32Array[] = [];
  const counts = new Map<string, number>();

  const addWeight = (layerName: string, name: string, shape: readonly number[], data: Float32Array) => {
    weights.push({ name: `${layerName}/${name}`, shape: [...shape], dtype: 'float32' });
    blobs.push(data);
  };

  /** A Keras layer named <baseName>_<n>, its weights <name>/<weight>; the first one takes the input shape. */
  const nameOf = (baseName: string): string => {
    const n = (counts.get(baseName) ?? 0) + 1;
    counts.set(baseName, n);
    return `${baseName}_${n}`;
  };
  const emit = (k: KerasLayerOut): void => {
    const name = nameOf(k.baseName);
    const config: Record<string, unknown> = { name, trainable: true, dtype: 'float32', ...k.config };
    if (kerasLayers.length === 0) config.batch_input_shape = [null, ...model.inShape];
    for (const [w, shape, data] of k.weights) addWeight(name, w, shape, data);
    kerasLayers.push({ class_name: k.className, config });
  };
  // Image tensors run NHWC in TF.js (tfjs-image.ts): where the export is.
  let nhwc = false;
  let perm: Int32Array | null = null;

  model.layers.forEach((layer, i) => {
    const where = `layer ${i} (${layer.type})`;
    const spec = model.spec.layers[layer.index];
    const t = layerTensors(model, i);
    if (layer.type === 'conv2d' || layer.type === 'maxpool2d' || layer.type === 'avgpool2d') {
      if (!nhwc) emit(permuteLayer([2, 3, 1]));
      nhwc = true;
      for (const k of windowLayers(layer, spec, where, t)) emit(k);
      return;
    }
    if (layer.type === 'batchnorm' && spec.type === 'batchnorm') {
      const channels = batchNormAxis(layer.inShape, spec) === 'channels';
      const rank = layer.inShape.length;
      if (rank > 3) {
        throw dptError('DPT_ERR_MODEL_FILE', `${where}: TensorFlow.js normalizes inputs of at most 3 axes per sample, this one is ${JSON.stringify(layer.inShape)}; ` +
          'no TensorFlow.js export for this model (the PyTorch export has it)');
      }
      if (channels && rank === 3 && !nhwc) emit(permuteLayer([2, 3, 1]));
      // On the last axis (W) of an image: back to NCHW, whose axis 3 is W (a later window layer permutes again).
      if (!channels && nhwc) emit(permuteLayer([3, 1, 2]));
      if (rank === 3) nhwc = channels;
      // NOTE: TF.js 4.22 normalizes a non-last axis wrong (its cpu kernel cycles the
      // statistics along the last axis): the channels of a [C, L] go last and back.
      const swap = channels && rank === 2;
      if (swap) emit(permuteLayer([2, 1]));
      // After a Flatten of NHWC features, the vectors in Keras's (h, w, c) order.
      const order = perm;
      emit(batchNormLayer(model, i, spec.eps ?? 1e-5, rank === 3 ? 3 : -1, t, where, (x) => (order === null ? x.data : permuteRows(x.data, order, 1))));
      if (swap) emit(permuteLayer([2, 1]));
      return;
    }
    if (nhwc && layer.type === 'flatten') {
      const [C, H, W] = layer.inShape;
      if (denseFollows(model.layers, i)) perm = hwcToChw(C, H, W);
      else emit(permuteLayer([3, 1, 2]));
      nhwc = false;
      emit({ className: 'Flatten', baseName: 'flatten', config: {}, weights: [] });
      return;
    }
    const elementwise = layer.type === 'relu' || layer.type === 'sigmoid' || layer.type === 'tanh' || layer.type === 'dropout';
    if ((nhwc && !elementwise) || (perm !== null && !elementwise && layer.type !== 'dense')) {
      throw dptError('DPT_ERR_MODEL_FILE', `${where}: on an image in TF.js's NHWC layout it would act on the channels where ours acts on the last axis; ` +
        'no TensorFlow.js export for this model (flatten first)');
    }
    const kc = KERAS_CLASS[layer.type];
    if (kc === undefined) throw new Error(`${where}: no TensorFlow.js layer for type "${layer.type}"`);
    const [className, baseName] = kc;
    const name = nameOf(baseName);
    const config: Record<string, unknown> = { name, trainable: true, dtype: 'float32' };
    if (kerasLayers.length === 0) config.batch_input_shape = [null, ...model.inShape];
    // After a Flatten of NHWC features: the Dense's rows in Keras's (h, w, c) order.
    const reorder = (x: F32Tensor, cols: number): Float32Array => (perm === null ? x.data : permuteRows(x.data, perm, cols));

    switch (layer.type) {
      case 'dense': {
        const W = { ...tensor(t, 'W', where) };
        W.data = reorder(W, W.shape[1]);
        perm = null;
        const hasBias = t.has('b');
        Object.assign(config, { units: W.shape[1], activation: 'linear', use_bias: hasBias });
        addWeight(name, 'kernel', W.shape, W.data);
        if (hasBias) {
          const b = tensor(t, 'b', where);
          addWeight(name, 'bias', b.shape, b.data);
        }
        break;
      }
      case 'relu':
      case 'sigmoid':
      case 'tanh':
      case 'softmax':
        config.activation = layer.type;
        break;
      case 'dropout':
        config.rate = spec.type === 'dropout' ? spec.rate : 0;
        break;
      case 'lstm': {
        const Wih = tensor(t, 'W_ih', where), Whh = tensor(t, 'W_hh', where);
        const bih = tensor(t, 'b_ih', where), bhh = tensor(t, 'b_hh', where);
        // Keras has one LSTM bias: the sum, computed as our forward computes it.
        const b = { shape: bih.shape, data: bih.data.map((v, j) => v + bhh.data[j]) };
        Object.assign(config, recurrentConfig(Whh.shape[0], layer.outShape.length === 2));
        config.unit_forget_bias = true;
        addWeight(name, 'kernel', Wih.shape, Wih.data);
        addWeight(name, 'recurrent_kernel', Whh.shape, Whh.data);
        addWeight(name, 'bias', b.shape, b.data);
        break;
      }
      case 'gru': {
        const Wih = tensor(t, 'W_ih', where), Whh = tensor(t, 'W_hh', where);
        const bih = tensor(t, 'b_ih', where), bhh = tensor(t, 'b_hh', where);
        const [F, G] = Wih.shape;
        const H = G / 3;
        Object.assign(config, recurrentConfig(H, layer.outShape.length === 2));
        config.reset_after = true;
        const bias = new Float32Array(2 * G);
        bias.set(gruGatesToKeras(bih.data, 1, H), 0);
        bias.set(gruGatesToKeras(bhh.data, 1, H), G);
        addWeight(name, 'kernel', [F, G], gruGatesToKeras(Wih.data, F, H));
        addWeight(name, 'recurrent_kernel', [H, G], gruGatesToKeras(Whh.data, H, H));
        addWeight(name, 'bias', [2, G], bias);
        break;
      }
      case 'flatten':
        break;
      case 'reshape':
        config.target_shape = [...layer.outShape];
        break;
    }
    kerasLayers.push({ class_name: className, config });
  });
  // An image output goes back to our NCHW.
  if (nhwc) emit(permuteLayer([3, 1, 2]));

  let total = 0;
  for (const b of blobs) total += b.byteLength;
  const weightsBin = new Uint8Array(total);
  const view = new DataView(weightsBin.buffer);
  let pos = 0;
  for (const b of blobs) {
    if (LITTLE_ENDIAN) weightsBin.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), pos);
    else for (let k = 0; k < b.length; k++) view.setFloat32(pos + 4 * k, b[k], true);
    pos += b.byteLength;
  }

  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: 'dptrain',
      convertedBy: null,
      modelTopology: {
        class_name: 'Sequential',
        config: { name: 'sequential_1', layers: kerasLayers },
        backend: 'tensor_flow.js',
      },
      weightsManifest: [{ paths: [TFJS_WEIGHTS_FILE], weights }],
      userDefinedMetadata: exportMetadata(info, model.outSize),
    },
    weightsBin,
  };
}

/** BatchNormalization of layer i on Keras axis `axis`; `vector` orders its four vectors. */
function batchNormLayer(model: Model, i: number, eps: number, axis: number, t: Map<string, F32Tensor>, where: string,
  vector: (x: F32Tensor) => Float32Array): KerasLayerOut {
  const mean = model.entries.find((e) => e.layerIndex === i && e.name === 'running_mean');
  const momentum = mean?.momentum ?? 0.1;
  const weights: KerasLayerOut['weights'] = [];
  for (const [ours, keras] of [['gamma', 'gamma'], ['beta', 'beta'], ['running_mean', 'moving_mean'], ['running_var', 'moving_variance']]) {
    const x = tensor(t, ours, where);
    weights.push([keras, x.shape, vector(x)]);
  }
  return {
    className: 'BatchNormalization', baseName: 'batch_normalization',
    config: { axis, momentum: 1 - momentum, epsilon: eps, center: true, scale: true }, weights,
  };
}

function recurrentConfig(units: number, returnSequences: boolean): Record<string, unknown> {
  return {
    units,
    activation: 'tanh',
    recurrent_activation: 'sigmoid',
    use_bias: true,
    return_sequences: returnSequences,
    return_state: false,
    go_backwards: false,
    stateful: false,
    unroll: false,
    dropout: 0,
    recurrent_dropout: 0,
  };
}
