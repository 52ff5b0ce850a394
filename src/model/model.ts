// Model spec -> a sequential model over ONE flat parameter buffer
// (docs/design.md principle 2).
//
// Flat layout: every trainable parameter, layer by layer in spec order, then
// every statistics buffer (BatchNorm running mean/var). The gradient vector
// has the same layout, followed by GRAD_EXTRA slots that ride along through
// the reduction tree:
//   [ trainable grads (numTrainable) | stat accumulators | lossSum | sampleCount ]
// so one reduction yields the gradient sum, the BatchNorm statistics and the
// loss of a whole batch, and one message per step carries all of it.
import { dptError } from '../errors.js';
import { formatZodError, plainIssueMessage } from '../check/zod-format.js';
import { initParam } from '../init/init.js';
import { allocFloats } from '../tensor/alloc.js';
import type { ForwardContext, Layer } from '../nn/layer.js';
import { collectWorkspaces, sizeOf } from '../nn/layer.js';
import { createDense } from '../nn/dense.js';
import { createActivation, type ActivationKind } from '../nn/activations.js';
import { createDropout } from '../nn/dropout.js';
import { createBatchNorm } from '../nn/batchnorm.js';
import { createFlatten, createReshape } from '../nn/reshape.js';
import { createLstm } from '../nn/lstm.js';
import { createGru } from '../nn/gru.js';
import { createConv2d } from '../nn/conv2d.js';
import { createPool2d } from '../nn/pool2d.js';
import { ModelSpec, type LayerSpec } from './spec.js';

/** Slots after the parameter gradients: loss sum, sample count. */
export const GRAD_EXTRA = 2;

export interface ParamEntry {
  /** Index of the layer spec this tensor belongs to (`layers[i]`). */
  readonly specIndex: number;
  readonly layerType: string;
  /** Position of the layer in model.layers (after activation expansion). */
  readonly layerIndex: number;
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
  readonly trainable: boolean;
  /** Regularization (trainable weights only). */
  readonly l1: number;
  readonly l2: number;
  readonly decay: boolean;
  /** Statistics buffers: weight of the new statistic. */
  readonly momentum: number;
}

export interface Model {
  readonly spec: ModelSpec;
  readonly layers: readonly Layer[];
  readonly entries: readonly ParamEntry[];
  /** Trainable parameters occupy [0, numTrainable) of the flat buffer. */
  readonly numTrainable: number;
  /** Trainable parameters plus statistics buffers. */
  readonly size: number;
  readonly params: Float32Array;
  /** Length size + GRAD_EXTRA. */
  readonly grads: Float32Array;
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  readonly inSize: number;
  readonly outSize: number;
  /** Forward through every layer; the returned buffer belongs to the last layer. */
  forward(x: Float32Array, batch: number, ctx: ForwardContext): Float32Array;
  /** Backward from dL/dy; accumulates into grads. */
  backward(dy: Float32Array, batch: number): void;
  /**
   * Frees every layer's buffers (they hold the largest batch seen; the next
   * forward allocates what it needs): after a batch that did not fit the
   * kernels' memory, the half-grown buffers would crowd out a smaller one.
   * Views handed out before are invalid afterwards.
   */
  releaseBuffers?(): void;
}

export interface BuildOptions {
  /**
   * Use this buffer for the parameters (e.g. shared memory). Length >= size.
   * Default: allocFloats(size), i.e. WebAssembly memory when the wasm kernels
   * are active; a buffer outside it works but is copied in at every product.
   */
  params?: Float32Array;
  /** Use this buffer for the gradient vector. Length >= size + GRAD_EXTRA. Default: allocFloats. */
  grads?: Float32Array;
}

/** Validates a parsed JSON value as a model spec; errors name the field. */
export function parseModelSpec(value: unknown, where = 'model'): ModelSpec {
  const result = ModelSpec.safeParse(value, { error: plainIssueMessage });
  if (!result.success) throw dptError('DPT_ERR_MODEL_SPEC', formatZodError(result.error, where));
  return result.data;
}

/** A layer and the activation its spec names, expanded into a layer of its own. */
function withActivation(layer: Layer, specIndex: number, act: 'linear' | ActivationKind | undefined): Layer[] {
  if (act === undefined || act === 'linear') return [layer];
  return [layer, createActivation(specIndex, layer.outShape, act)];
}

function createLayer(spec: LayerSpec, specIndex: number, inShape: readonly number[]): Layer[] {
  switch (spec.type) {
    case 'dense':
      return withActivation(createDense(specIndex, inShape, spec), specIndex, spec.activation);
    case 'relu':
    case 'sigmoid':
    case 'tanh':
    case 'softmax':
      return [createActivation(specIndex, inShape, spec.type)];
    case 'dropout':
      return [createDropout(specIndex, inShape, spec)];
    case 'batchnorm':
      return [createBatchNorm(specIndex, inShape, spec)];
    case 'lstm':
      return [createLstm(specIndex, inShape, spec)];
    case 'gru':
      return [createGru(specIndex, inShape, spec)];
    case 'flatten':
      return [createFlatten(specIndex, inShape)];
    case 'reshape':
      return [createReshape(specIndex, inShape, spec)];
    case 'conv2d':
      return withActivation(createConv2d(specIndex, inShape, spec), specIndex, spec.activation);
    case 'maxpool2d':
    case 'avgpool2d':
      return [createPool2d(specIndex, inShape, spec)];
  }
}

export function buildModel(specValue: ModelSpec | unknown, options: BuildOptions = {}): Model {
  const spec = parseModelSpec(specValue);
  const layers: Layer[] = [];
  const owner: number[] = [];
  let shape: readonly number[] = spec.inputShape;
  const { workspaces } = collectWorkspaces(() => spec.layers.forEach((layerSpec, i) => {
    for (const layer of createLayer(layerSpec, i, shape)) {
      layers.push(layer);
      owner.push(i);
      shape = layer.outShape;
    }
  }));

  // Lay out trainable parameters first, then the statistics buffers.
  const entries: ParamEntry[] = [];
  let offset = 0;
  layers.forEach((layer, li) => {
    const ls = spec.layers[owner[li]] as { l1?: number; l2?: number; regularizeBias?: boolean };
    for (const p of layer.params) {
      const size = sizeOf(p.shape);
      const regularized = p.decay || ls.regularizeBias === true;
      entries.push({
        specIndex: owner[li], layerType: layer.type, layerIndex: li, name: p.name, shape: p.shape,
        offset, size, trainable: true, decay: regularized,
        l1: regularized ? ls.l1 ?? 0 : 0, l2: regularized ? ls.l2 ?? 0 : 0, momentum: 0,
      });
      offset += size;
    }
  });
  const numTrainable = offset;
  layers.forEach((layer, li) => {
    for (const s of layer.stats) {
      const size = sizeOf(s.shape);
      entries.push({
        specIndex: owner[li], layerType: layer.type, layerIndex: li, name: s.name, shape: s.shape,
        offset, size, trainable: false, decay: false, l1: 0, l2: 0, momentum: s.momentum,
      });
      offset += size;
    }
  });
  const size = offset;

  // Default buffers come from the allocator in effect (src/tensor/alloc.ts):
  // WebAssembly memory when the wasm kernels are active, so that the weights
  // and the gradients they accumulate into are used in place, with no copy per call.
  const params = options.params ?? allocFloats(size);
  const grads = options.grads ?? allocFloats(size + GRAD_EXTRA);
  if (params.length < size) throw new RangeError(`params buffer holds ${params.length} floats, the model needs ${size}`);
  if (grads.length < size + GRAD_EXTRA) throw new RangeError(`grads buffer holds ${grads.length} floats, the model needs ${size + GRAD_EXTRA}`);

  let e = 0;
  const view = (buf: Float32Array, entry: ParamEntry) => buf.subarray(entry.offset, entry.offset + entry.size);
  const statEntries = entries.filter((en) => !en.trainable);
  let se = 0;
  for (const layer of layers) {
    const p: Float32Array[] = [], g: Float32Array[] = [], s: Float32Array[] = [], ds: Float32Array[] = [];
    for (let k = 0; k < layer.params.length; k++, e++) {
      p.push(view(params, entries[e]));
      g.push(view(grads, entries[e]));
    }
    for (let k = 0; k < layer.stats.length; k++, se++) {
      s.push(view(params, statEntries[se]));
      ds.push(view(grads, statEntries[se]));
    }
    layer.bind(p, g, s, ds);
  }

  const inShape = spec.inputShape;
  const outShape = layers[layers.length - 1].outShape;
  return {
    spec, layers, entries, numTrainable, size, params, grads,
    inShape, outShape, inSize: sizeOf(inShape), outSize: sizeOf(outShape),
    forward(x, batch, ctx) {
      let h = x;
      for (const layer of layers) h = layer.forward(h, batch, ctx);
      return h;
    },
    backward(dy, batch) {
      let d: Float32Array | null = dy;
      for (let i = layers.length - 1; i >= 0 && d !== null; i--) {
        d = layers[i].backward(d, batch, i > 0);
      }
    },
    releaseBuffers() {
      for (const w of workspaces) w.release();
    },
  };
}

/** Seeded initialization of every parameter and statistics buffer. */
export function initModel(model: Model, seed: number): void {
  let k = 0;
  for (const layer of model.layers) {
    for (const p of layer.params) {
      const entry = model.entries[k];
      initParam(model.params.subarray(entry.offset, entry.offset + entry.size), p.init, p.fanIn, p.fanOut, seed, k);
      k++;
    }
  }
  for (const layer of model.layers) {
    for (const s of layer.stats) {
      const entry = model.entries[k];
      model.params.subarray(entry.offset, entry.offset + entry.size).fill(s.init === 'ones' ? 1 : 0);
      k++;
    }
  }
}

/** A readable name per flat tensor, e.g. `layers.0.dense.W`. */
export function entryName(entry: ParamEntry): string {
  return `layers.${entry.specIndex}.${entry.layerType}.${entry.name}`;
}

