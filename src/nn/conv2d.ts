// 2-D convolution (PyTorch's Conv2d: a cross-correlation over NCHW samples).
//
// Letters (src/nn/conv-geometry.ts): N samples, C x H x W the input,
// O = spec.filters output channels of Ho x Wo, K = C * kh * kw taps.
//   y[n, o, oh, ow] = b[o] + sum over c, ki, kj of
//                     W[o, c, ki, kj] * x[n, c, oh*sh + ki*dh - pt, ow*sw + kj*dw - pl]
// with zeros outside the input. W is stored (O, C, kh, kw), PyTorch's
// layout (TF.js's HWIO is a transpose away, done by the exporters). The
// loops are the conv kernels' (src/tensor/conv.ts: a TypeScript reference
// and WebAssembly SIMD, the same bits); the activation in a Conv2dSpec is
// not applied here: the model builder expands it into its own layer.
//
// Init: fan-in C*kh*kw and fan-out O*kh*kw (the receptive field counts, as
// in Keras and PyTorch), Glorot uniform by default like the dense layer.
import { dptError, fmtShape } from '../errors.js';
import type { Conv2dSpec } from '../model/spec.js';
import { convKernels } from '../tensor/conv.js';
import { windowGeometry, type WindowGeometry } from './conv-geometry.js';
import { sizeOf, Workspace, type Layer, type ParamSpec, checkBind, checkForwardInput } from './layer.js';

const EMPTY: Float32Array = new Float32Array(0);

/** y (N, O, Ho, Wo) = conv(x, W) + b with the active kernels; keep and scratch as the kernels ask. */
export function conv2dForward(
  y: Float32Array, x: Float32Array, W: Float32Array, b: Float32Array | null, g: WindowGeometry, N: number,
  keep: Float32Array, scratch: Float32Array,
): void {
  convKernels().convForward(y, x, W, b, g, N, keep, scratch);
}

/** Backward of conv2dForward (same x, W, keep): ACCUMULATES into dW and db, overwrites dx unless it is null. */
export function conv2dBackward(
  dx: Float32Array | null, dW: Float32Array, db: Float32Array | null, dy: Float32Array,
  x: Float32Array, W: Float32Array, g: WindowGeometry, N: number, keep: Float32Array, scratch: Float32Array,
): void {
  convKernels().convBackward(dx, dW, db, dy, x, W, g, N, keep, scratch);
}

/** The filters (O, C, kh, kw) in TensorFlow's HWIO layout (kh, kw, C, O). */
export function toHwio(w: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(O * C * kh * kw);
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < kh; i++) {
        for (let j = 0; j < kw; j++) out[((i * kw + j) * C + c) * O + o] = w[((o * C + c) * kh + i) * kw + j];
      }
    }
  }
  return out;
}

/** The geometry of a conv2d spec on a [C, H, W] input; `where` names the layer in errors. */
export function conv2dGeometry(where: string, inShape: readonly number[], spec: Conv2dSpec): WindowGeometry {
  return windowGeometry(where, inShape, spec.filters, spec.kernelSize, spec.stride, spec.padding, spec.dilation);
}

export function createConv2d(index: number, inShape: readonly number[], spec: Conv2dSpec): Layer {
  const where = `layers[${index}] (conv2d)`;
  const g = conv2dGeometry(where, inShape, spec);
  const { C, O, kh, kw, Ho, Wo } = g;
  const K = C * kh * kw;
  const inSize = sizeOf(inShape);
  const outShape = [O, Ho, Wo];
  const outSize = O * Ho * Wo;
  const useBias = spec.useBias !== false;

  const params: ParamSpec[] = [
    { name: 'W', shape: [O, C, kh, kw], init: spec.kernelInit ?? 'glorot_uniform', fanIn: K, fanOut: O * kh * kw, decay: true },
  ];
  if (useBias) params.push({ name: 'b', shape: [O], init: 'zeros', fanIn: K, fanOut: O * kh * kw, decay: false });

  let W: Float32Array = EMPTY;         // (O, C, kh, kw)
  let dW: Float32Array = EMPTY;        // (O, C, kh, kw)
  let b: Float32Array | null = null;   // (O)
  let db: Float32Array | null = null;  // (O)
  let x: Float32Array = EMPTY;         // (N, C, H, W) the input, kept for backward
  let samples = 0;                     // N of the last forward
  const y = new Workspace();           // (N, O, Ho, Wo)
  const dx = new Workspace();          // (N, C, H, W)
  const keep = new Workspace();        // what the kernels keep from forward for backward (im2col's columns)
  const scratch = new Workspace();     // the kernels' scratch
  let kept: Float32Array = EMPTY;

  return {
    type: 'conv2d',
    index,
    inShape: [...inShape],
    outShape,
    params,
    stats: [],
    bind(p, gr) {
      checkBind(where, params, p, gr);
      W = p[0]; dW = gr[0];
      if (useBias) { b = p[1]; db = gr[1]; }
    },
    forward(input, batch) {
      checkForwardInput(where, input, batch * inSize, batch, inShape);
      samples = batch;
      x = input;
      const k = convKernels();
      const out = y.get(batch * outSize);
      kept = keep.get(k.convKeepLength(g, batch));
      k.convForward(out, x, W, b, g, batch, kept, scratch.get(k.convScratchLength(g, batch)));
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch !== samples || dy.length < batch * outSize) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${samples} samples of ${fmtShape(outShape)})`);
      }
      const k = convKernels();
      const din = needDx ? dx.get(batch * inSize) : null;
      k.convBackward(din, dW, db, dy, x, W, g, batch, kept, scratch.get(k.convScratchLength(g, batch)));
      return din;
    },
  };
}
