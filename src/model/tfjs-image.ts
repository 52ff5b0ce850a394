// The image layers of the TensorFlow.js export (tfjs-export.ts): ours are
// NCHW (PyTorch's), TF.js's Conv2D and pooling layers are NHWC
// (channels_last; its CPU kernels have no channels_first). So:
//   - before the first convolution or pooling on an NCHW tensor (the input
//     [C, H, W]), a Permute([2, 3, 1]) makes it NHWC: the exported model
//     takes the same flat rows of C*H*W values as dptrain;
//   - conv2d  Conv2D(channels_last), kernel [kh, kw, C, O] = W in HWIO,
//     bias [O]; maxpool2d MaxPooling2D, avgpool2d AveragePooling2D;
//     padding 'valid', or 'same' where it is TF's 'same' (for average
//     pooling only without countIncludePad: TF's 'same' divides by the
//     cells inside the input), else a ZeroPadding2D in front (convolution,
//     average pooling with countIncludePad) or an error (max pooling pads
//     with -infinity, which ZeroPadding2D cannot);
//   - a Flatten of an NHWC tensor lists features in (h, w, c) order, ours in
//     (c, h, w): the next Dense's kernel rows are permuted to match (through
//     activations, dropout and batch normalization, whose vectors are
//     permuted alike); with no Dense after it, a Permute([3, 1, 2]) goes
//     before the Flatten instead, as it does at the end of a model whose
//     output is an image.
//   - batchnorm on the channels of an image is BatchNormalization on axis 3
//     of the NHWC tensor (a Permute in front when the image is still NCHW);
//     on the last axis of an image (axis 'last'), on axis 3 of the NCHW
//     tensor (a Permute([3, 1, 2]) back in front when it is NHWC).
// Layers that act on the last axis of an NHWC tensor (dense, softmax,
// reshape, recurrent) would act on C where ours act on W: refused.
import { dptError } from '../errors.js';
import { toHwio } from '../nn/conv2d.js';
import { conv2dGeometry } from '../nn/conv2d.js';
import type { WindowGeometry } from '../nn/conv-geometry.js';
import { pool2dGeometry } from '../nn/pool2d.js';
import type { Layer } from '../nn/layer.js';
import type { LayerSpec } from './spec.js';
import type { F32Tensor } from './safetensors.js';

/** Where the export is: an NCHW or NHWC image tensor, or flat features (maybe in (h, w, c) order: `perm`). */
export interface ImageLayout {
  nhwc: boolean;
  /** After a Flatten of an NHWC tensor: Keras feature j is our feature perm[j]. */
  perm: Int32Array | null;
}

export interface KerasLayerOut {
  className: string;
  baseName: string;
  config: Record<string, unknown>;
  weights: [string, readonly number[], Float32Array][];
}

const ELEMENTWISE = new Set(['relu', 'sigmoid', 'tanh', 'dropout']);

/** Keras feature j of a flattened (H, W, C) tensor is our feature perm[j] of (C, H, W). */
export function hwcToChw(C: number, H: number, W: number): Int32Array {
  const perm = new Int32Array(C * H * W);
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) perm[(h * W + w) * C + c] = (c * H + h) * W + w;
  return perm;
}

export function permuteLayer(dims: number[]): KerasLayerOut {
  return { className: 'Permute', baseName: 'permute', config: { dims }, weights: [] };
}

/** Whether the layers after position i reach a Dense through layers that keep features in place. */
export function denseFollows(layers: readonly Layer[], i: number): boolean {
  for (let j = i + 1; j < layers.length; j++) {
    if (layers[j].type === 'dense') return true;
    if (!ELEMENTWISE.has(layers[j].type) && layers[j].type !== 'batchnorm') return false;
  }
  return false;
}

/** The TF 'same' padding of g's input, to compare with g's own. */
function isTfSame(g: WindowGeometry): boolean {
  const same = (size: number, k: number, s: number, d: number): [number, number] => {
    const total = Math.max(0, (Math.ceil(size / s) - 1) * s + d * (k - 1) + 1 - size);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  };
  const [t, b] = same(g.H, g.kh, g.sh, g.dh), [l, r] = same(g.W, g.kw, g.sw, g.dw);
  return g.pt === t && g.pb === b && g.pl === l && g.pr === r;
}

/** The Keras layers of a conv2d / maxpool2d / avgpool2d layer (a ZeroPadding2D in front if need be); the input is NHWC. */
export function windowLayers(layer: Layer, spec: LayerSpec, where: string, tensors: Map<string, F32Tensor>): KerasLayerOut[] {
  const out: KerasLayerOut[] = [];
  let g: WindowGeometry;
  if (spec.type === 'conv2d') g = conv2dGeometry(where, layer.inShape, spec);
  else if (spec.type === 'maxpool2d' || spec.type === 'avgpool2d') g = pool2dGeometry(where, layer.inShape, spec);
  else throw new Error(`${where}: not a window layer`);
  const none = g.pt === 0 && g.pb === 0 && g.pl === 0 && g.pr === 0;
  const countsPad = spec.type === 'avgpool2d' && spec.countIncludePad !== false;
  let padding = 'valid';
  if (!none) {
    if (isTfSame(g) && !countsPad) {
      padding = 'same';
    } else if (spec.type === 'maxpool2d' || (spec.type === 'avgpool2d' && !countsPad)) {
      throw dptError('DPT_ERR_MODEL_FILE', `${where}: padding ${g.pt},${g.pl},${g.pb},${g.pr} (top, left, bottom, right) has no TensorFlow.js form: ` +
        `its pooling pads only as 'same'${spec.type === 'maxpool2d' ? ' (ZeroPadding2D would pad a max with zeros)' : ''}`);
    } else {
      out.push({
        className: 'ZeroPadding2D', baseName: 'zero_padding2d',
        config: { padding: [[g.pt, g.pb], [g.pl, g.pr]], data_format: 'channels_last' }, weights: [],
      });
    }
  }
  const common = { strides: [g.sh, g.sw], padding, data_format: 'channels_last' };
  if (spec.type === 'conv2d') {
    const W = tensors.get('W');
    if (W === undefined) throw new Error(`${where}: the model has no tensor "W"`);
    const b = tensors.get('b');
    const weights: KerasLayerOut['weights'] = [['kernel', [g.kh, g.kw, g.C, g.O], toHwio(W.data, g.O, g.C, g.kh, g.kw)]];
    if (b !== undefined) weights.push(['bias', b.shape, b.data]);
    out.push({
      className: 'Conv2D', baseName: 'conv2d',
      config: { filters: g.O, kernel_size: [g.kh, g.kw], ...common, dilation_rate: [g.dh, g.dw], activation: 'linear', use_bias: b !== undefined },
      weights,
    });
  } else {
    out.push({
      className: spec.type === 'maxpool2d' ? 'MaxPooling2D' : 'AveragePooling2D',
      baseName: spec.type === 'maxpool2d' ? 'max_pooling2d' : 'average_pooling2d',
      config: { pool_size: [g.kh, g.kw], ...common }, weights: [],
    });
  }
  return out;
}

/** Rows of a (rows, cols) matrix reordered: out row j = a's row perm[j]. */
export function permuteRows(a: Float32Array, perm: Int32Array, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let j = 0; j < perm.length; j++) out.set(a.subarray(perm[j] * cols, (perm[j] + 1) * cols), j * cols);
  return out;
}
