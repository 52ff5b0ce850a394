// 2-D max and average pooling over NCHW samples, channel by channel
// (PyTorch's MaxPool2d / AvgPool2d, floor mode).
//
// Letters (src/nn/conv-geometry.ts): N samples, C x H x W the input,
// C x Ho x Wo the output, kh x kw the window, sh x sw its stride (the
// window by default: non-overlapping).
//   max  y[n, c, oh, ow] = the largest x[n, c, ih, iw] of the window; the
//        gradient goes to that one cell (its index is kept from forward)
//   avg  y = the window's sum / kh*kw (countIncludePad, the default) or /
//        the number of its cells inside the input; the gradient is shared
//        out equally
// Padding reads as -infinity for max and as zeros for avg. Explicit padding
// is at most half the window (PyTorch's rule: every window then holds a
// cell of the input). The loops are the conv kernels' (src/tensor/conv.ts).
import { dptError, fmtShape } from '../errors.js';
import type { Pool2dSpec } from '../model/spec.js';
import { convKernels } from '../tensor/conv.js';
import { fmtWindow, pairOf, windowGeometry, type WindowGeometry } from './conv-geometry.js';
import { sizeOf, Workspace, type Layer, checkForwardInput } from './layer.js';

/** The geometry of a pooling spec on a [C, H, W] input; `where` names the layer in errors. */
export function pool2dGeometry(where: string, inShape: readonly number[], spec: Pool2dSpec): WindowGeometry {
  const g = windowGeometry(where, inShape, inShape[0] ?? 0, spec.poolSize, spec.stride ?? spec.poolSize, spec.padding, 1);
  if (typeof spec.padding === 'number' || Array.isArray(spec.padding)) {
    const [ph, pw] = pairOf(spec.padding, 0);
    if (2 * ph > g.kh || 2 * pw > g.kw) {
      throw dptError('DPT_ERR_SHAPE', `${where}: padding ${ph}x${pw} is more than half the ${g.kh}x${g.kw} window; use at most ${g.kh >> 1}x${g.kw >> 1}`);
    }
  }
  if (g.H * g.W >= 2 ** 24) {
    throw dptError('DPT_ERR_SHAPE', `${where}: an input plane of ${g.H}x${g.W} is too large (at most 2^24 cells)`);
  }
  return g;
}

export function createPool2d(index: number, inShape: readonly number[], spec: Pool2dSpec): Layer {
  const kind = spec.type;
  const where = `layers[${index}] (${kind})`;
  const g = pool2dGeometry(where, inShape, spec);
  const countIncludePad = spec.countIncludePad !== false;
  if (kind === 'maxpool2d' && spec.countIncludePad !== undefined) {
    throw dptError('DPT_ERR_MODEL_SPEC', `${where}: countIncludePad applies to avgpool2d only`);
  }
  const inSize = sizeOf(inShape);
  const outShape = [g.C, g.Ho, g.Wo];
  const outSize = sizeOf(outShape);
  const y = new Workspace();       // (N, C, Ho, Wo)
  const argmax = new Workspace();  // (N, C, Ho, Wo) max: the winning cell of each window
  const dx = new Workspace();      // (N, C, H, W)
  let arg = argmax.get(0);
  let samples = 0;

  return {
    type: kind,
    index,
    inShape: [...inShape],
    outShape,
    params: [],
    stats: [],
    bind() {},
    forward(x, batch) {
      checkForwardInput(where, x, batch * inSize, batch, inShape);
      samples = batch;
      const out = y.get(batch * outSize);
      if (kind === 'maxpool2d') {
        arg = argmax.get(batch * outSize);
        convKernels().maxPoolForward(out, arg, x, g, batch);
      } else {
        convKernels().avgPoolForward(out, x, g, batch, countIncludePad);
      }
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch !== samples || dy.length < batch * outSize) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${samples} samples of ${fmtShape(outShape)}, window ${fmtWindow(g)})`);
      }
      if (!needDx) return null;
      const din = dx.get(batch * inSize);
      if (kind === 'maxpool2d') convKernels().maxPoolBackward(din, dy, arg, g, batch);
      else convKernels().avgPoolBackward(din, dy, g, batch, countIncludePad);
      return din;
    },
  };
}
