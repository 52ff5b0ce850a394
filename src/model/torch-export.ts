// PyTorch-style export: a safetensors file whose tensor names and shapes are
// the state_dict of the equivalent nn.Sequential, so a PyTorch user can do
//
//   from safetensors.torch import load_file
//   net.load_state_dict(load_file("model.safetensors"), strict=False)
//
// Module index i is the position in model.layers, i.e. AFTER activation
// expansion: a dense layer with activation "relu" is two modules, Linear then
// ReLU. Mapping, ours -> PyTorch:
//   dense      Linear          weight [O, I] = W^T, bias [O] = b
//   batchnorm  BatchNorm1d / BatchNorm2d / BatchNorm3d (flat or [C, L] / [C, H, W] / [C, D, H, W]
//              on its channels)   weight = gamma, bias = beta, running_mean, running_var,
//                                 num_batches_tracked (int64: the training steps the model took)
//   lstm       LSTM(batch_first=True)
//                              weight_ih_l0 [4H, F] = W_ih^T, weight_hh_l0 [4H, H] = W_hh^T,
//                              bias_ih_l0 = b, bias_hh_l0 = zeros (PyTorch adds the two)
//   gru        GRU(batch_first=True)
//                              weight_ih_l0 [3H, F] = W_ih^T, weight_hh_l0 [3H, H] = W_hh^T,
//                              bias_ih_l0 = b_ih, bias_hh_l0 = b_hh (same gate order r, z, n)
//   conv2d     Conv2d          weight [O, C, kh, kw] = W (the same layout), bias [O] = b
//   maxpool2d, avgpool2d       MaxPool2d, AvgPool2d (no tensors)
//   relu, sigmoid, tanh, softmax, dropout, flatten: modules without tensors
// Convolution and pooling padding is PyTorch's (zeros on both sides) unless
// it is uneven ('same' with an even window or a stride): Conv2d then takes
// padding='same' (stride 1), else the module list says which nn.ZeroPad2d
// to put in front.
//   reshape    no nn module (x.reshape(-1, *shape), or nn.Unflatten(1, shape) on a flat input)
//
// NOTE: num_batches_tracked is the number of training steps (our running
// statistics move once per step, as PyTorch's do once per training forward);
// the caller knows it (a model file of `dptrain train` says it in its
// metadata), 0 otherwise. PyTorch reads it only with momentum=None. Caveats
// a user must know are listed in __metadata__.modules: nn.LSTM/nn.GRU
// return (output, state) and need a small wrapper in a Sequential (and
// output[:, -1] when returnSequences is false); a batchnorm on the LAST
// axis of a [T, F] input is a BatchNorm1d of x.transpose(1, 2).
//
// What prediction needs besides the weights (export-info.ts) goes into
// __metadata__ too: `inference` (JSON: featureNames, scaling {mean, scale},
// classNames, as in the native file), `loss`, `outputs` (what the outputs
// mean) and `scaling_formula`. Without them a user feeding raw values gets
// wrong predictions and cannot tell the class order.
import { fmtShape } from '../errors.js';
import { batchNormAxis } from '../nn/batchnorm.js';
import { conv2dGeometry } from '../nn/conv2d.js';
import { pool2dGeometry } from '../nn/pool2d.js';
import { transposeInto } from '../nn/recurrent.js';
import { layerTensors } from './save.js';
import { exportMetadata, type ExportInfo } from './export-info.js';
import type { Model } from './model.js';
import { encodeSafetensors, type F32Tensor, type I64Tensor } from './safetensors.js';

function tensor(tensors: Map<string, F32Tensor>, name: string, where: string): F32Tensor {
  const t = tensors.get(name);
  if (t === undefined) throw new Error(`${where}: the model has no tensor "${name}" (layer layout changed?)`);
  return t;
}

function transposed(t: F32Tensor): F32Tensor {
  const [rows, cols] = t.shape;
  return { shape: [cols, rows], data: transposeInto(new Float32Array(rows * cols), t.data, rows, cols) };
}

const tuple = (a: number, b: number): string => `(${a}, ${b})`;

/** Conv2d / MaxPool2d / AvgPool2d of layer i, its padding as PyTorch can say it. */
function windowModule(model: Model, i: number): string {
  const layer = model.layers[i];
  const spec = model.spec.layers[layer.index];
  const g = spec.type === 'conv2d' ? conv2dGeometry('', layer.inShape, spec)
    : spec.type === 'maxpool2d' || spec.type === 'avgpool2d' ? pool2dGeometry('', layer.inShape, spec) : null;
  if (g === null) return `${layer.type} [no PyTorch equivalent known]`;
  const even = g.pt === g.pb && g.pl === g.pr;
  const same = !even && spec.type === 'conv2d' && g.sh === 1 && g.sw === 1;
  const padding = even ? tuple(g.pt, g.pl) : same ? "'same'" : tuple(0, 0);
  const args = [`kernel_size=${tuple(g.kh, g.kw)}`, `stride=${tuple(g.sh, g.sw)}`, `padding=${padding}`];
  let text: string;
  if (spec.type === 'conv2d') {
    args.push(`dilation=${tuple(g.dh, g.dw)}`);
    if (spec.useBias === false) args.push('bias=False');
    text = `Conv2d(${g.C}, ${g.O}, ${args.join(', ')})`;
  } else if (spec.type === 'avgpool2d') {
    args.push(`count_include_pad=${spec.countIncludePad === false ? 'False' : 'True'}`);
    text = `AvgPool2d(${args.join(', ')})`;
  } else {
    text = `MaxPool2d(${args.join(', ')})`;
  }
  if (!even && !same) {
    const fill = spec.type === 'maxpool2d' ? ', value=float("-inf")' : '';
    text += ` [uneven padding: put nn.${fill === '' ? 'ZeroPad2d' : 'ConstantPad2d'}((${g.pl}, ${g.pr}, ${g.pt}, ${g.pb})${fill}) in front`;
    text += spec.type === 'avgpool2d' && spec.countIncludePad === false ? '; count_include_pad=False does not then exclude it]' : ']';
  }
  return text;
}

/** BatchNorm1d/2d/3d of layer i: the module that normalizes what ours does, or how to feed it. */
function batchNormModule(model: Model, i: number): string {
  const layer = model.layers[i];
  const spec = model.spec.layers[layer.index];
  if (spec.type !== 'batchnorm') return `${layer.type} [no PyTorch equivalent known]`;
  const shape = layer.inShape;
  const channels = batchNormAxis(shape, spec) === 'channels';
  const C = channels ? shape[0] : shape[shape.length - 1];
  const args = `${C}, eps=${spec.eps ?? 1e-5}, momentum=${spec.momentum ?? 0.1}`;
  if (shape.length === 1) return `BatchNorm1d(${args})`;
  // PyTorch's BatchNorm{1,2,3}d take (N, C, L), (N, C, H, W), (N, C, D, H, W): one per rank.
  const nd = Math.min(shape.length - 1, 3);
  const flat = shape.length > 4 ? '.flatten(2)' : '';
  if (!channels) {
    // The last axis moved to the channels' place (and back after): the other axes keep their statistics' role.
    const feed = shape.length === 2 ? 'x.transpose(1, 2)' : `x.movedim(-1, 1)${flat}`;
    return `BatchNorm${flat === '' ? nd : 1}d(${args}) [input ${fmtShape(shape)}: normalizes the last axis, apply to ${feed}]`;
  }
  if (flat === '') return `BatchNorm${nd}d(${args})`;
  return `BatchNorm1d(${args}) [input ${fmtShape(shape)}: normalizes the channels, apply to x${flat}]`;
}

/** One line per module of the equivalent nn.Sequential, with the caveats. */
export function torchModuleList(model: Model): string[] {
  const lines: string[] = [];
  model.layers.forEach((layer, i) => {
    const spec = model.spec.layers[layer.index];
    const inLast = layer.inShape[layer.inShape.length - 1];
    const outLast = layer.outShape[layer.outShape.length - 1];
    let text: string;
    switch (layer.type) {
      case 'dense':
        text = `Linear(${inLast}, ${outLast}${layer.params.length === 1 ? ', bias=False' : ''})`;
        break;
      case 'relu': text = 'ReLU()'; break;
      case 'sigmoid': text = 'Sigmoid()'; break;
      case 'tanh': text = 'Tanh()'; break;
      case 'softmax': text = 'Softmax(dim=-1)'; break;
      case 'dropout':
        text = `Dropout(p=${spec.type === 'dropout' ? spec.rate : '?'})`;
        break;
      case 'batchnorm':
        text = batchNormModule(model, i);
        break;
      case 'lstm':
      case 'gru': {
        const name = layer.type === 'lstm' ? 'LSTM' : 'GRU';
        text = `${name}(${inLast}, ${outLast}, batch_first=True) [returns (output, state)`;
        text += layer.outShape.length === 1 ? '; the layer output is output[:, -1]]' : '; the layer output is output]';
        break;
      }
      case 'conv2d':
      case 'maxpool2d':
      case 'avgpool2d':
        text = windowModule(model, i);
        break;
      case 'flatten': text = 'Flatten()'; break;
      case 'reshape':
        text = `Reshape${fmtShape(layer.outShape)} [no nn module: x.reshape(-1, ${layer.outShape.join(', ')})`;
        text += layer.inShape.length === 1 ? `, or Unflatten(1, (${layer.outShape.join(', ')},))]` : ']';
        break;
      default:
        text = `${layer.type} [no PyTorch equivalent known]`;
    }
    lines.push(`${i}: ${text}`);
  });
  return lines;
}

export interface TorchExportOptions extends Partial<ExportInfo> {
  /** BatchNorm's num_batches_tracked: the training steps the model took (default 0: not known). */
  batchesTracked?: number;
}

/** The state_dict tensors of the equivalent nn.Sequential, in module order. */
export function torchStateDict(model: Model, options: TorchExportOptions = {}): [string, F32Tensor | I64Tensor][] {
  const tracked = options.batchesTracked ?? 0;
  if (!Number.isSafeInteger(tracked) || tracked < 0) throw new RangeError(`batchesTracked must be a non-negative integer, got ${tracked}`);
  const out: [string, F32Tensor | I64Tensor][] = [];
  model.layers.forEach((layer, i) => {
    const where = `module ${i} (${layer.type})`;
    const t = layerTensors(model, i);
    switch (layer.type) {
      case 'dense':
        out.push([`${i}.weight`, transposed(tensor(t, 'W', where))]);
        if (t.has('b')) out.push([`${i}.bias`, tensor(t, 'b', where)]);
        break;
      case 'batchnorm':
        out.push([`${i}.weight`, tensor(t, 'gamma', where)]);
        out.push([`${i}.bias`, tensor(t, 'beta', where)]);
        out.push([`${i}.running_mean`, tensor(t, 'running_mean', where)]);
        out.push([`${i}.running_var`, tensor(t, 'running_var', where)]);
        out.push([`${i}.num_batches_tracked`, { shape: [], data: BigInt64Array.of(BigInt(tracked)) }]);
        break;
      case 'lstm':
        out.push([`${i}.weight_ih_l0`, transposed(tensor(t, 'W_ih', where))]);
        out.push([`${i}.weight_hh_l0`, transposed(tensor(t, 'W_hh', where))]);
        out.push([`${i}.bias_ih_l0`, tensor(t, 'b_ih', where)]);
        out.push([`${i}.bias_hh_l0`, tensor(t, 'b_hh', where)]);
        break;
      case 'conv2d':
        out.push([`${i}.weight`, tensor(t, 'W', where)]);
        if (t.has('b')) out.push([`${i}.bias`, tensor(t, 'b', where)]);
        break;
      case 'gru':
        out.push([`${i}.weight_ih_l0`, transposed(tensor(t, 'W_ih', where))]);
        out.push([`${i}.weight_hh_l0`, transposed(tensor(t, 'W_hh', where))]);
        out.push([`${i}.bias_ih_l0`, tensor(t, 'b_ih', where)]);
        out.push([`${i}.bias_hh_l0`, tensor(t, 'b_hh', where)]);
        break;
      default:
        if (t.size > 0) throw new Error(`${where}: no PyTorch mapping for its tensors ${[...t.keys()].join(', ')}`);
    }
  });
  return out;
}

/**
 * Encodes the PyTorch-style state_dict as safetensors with a module list in
 * __metadata__, and with what inference needs (the scaling, the names, what
 * the outputs mean) when `options` gives it.
 */
export function exportSafetensorsTorch(model: Model, options: TorchExportOptions = {}): Uint8Array {
  const { outputs, loss, scalingFormula, ...inference } = exportMetadata({ inference: options.inference ?? null, loss: options.loss }, model.outSize);
  const extra: Record<string, string> = { outputs };
  if (loss !== undefined) extra.loss = loss;
  if (Object.keys(inference).length > 0) extra.inference = JSON.stringify(inference);
  if (scalingFormula !== undefined) extra.scaling_formula = scalingFormula;
  return encodeSafetensors(torchStateDict(model, options), {
    ...extra,
    format: 'pt',
    producer: 'dptrain',
    description: 'state_dict of the equivalent torch.nn.Sequential; module i is model layer i after activation expansion',
    modules: torchModuleList(model).join('\n'),
    input_shape: fmtShape(model.inShape),
    notes: `BatchNorm num_batches_tracked (int64) is ${options.batchesTracked === undefined ? '0: the training steps were not known' : 'the training steps'}. ` +
      'LSTM bias_hh_l0 is zero: dptrain keeps one bias (= bias_ih + bias_hh).',
  });
}
