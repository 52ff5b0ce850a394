// The geometry of a 2-D window op (convolution, pooling) over NCHW samples,
// worked out once when the layer is built and handed to the kernels
// (src/tensor/conv.ts) with every call.
//
// Dimension letters (used by conv2d.ts, pool2d.ts and the kernels alike):
//   N  samples in the buffer (one micro-shard)
//   C  input channels, H x W the input plane
//   O  output channels (the filters; pooling: O = C)
//   kh x kw  the window, sh x sw its stride, dh x dw its dilation
//   pt, pl   zero rows on top / columns on the left (bottom and right
//            follow from Ho, Wo: whatever the last window reaches)
//   Ho x Wo  the output plane, P = Ho * Wo positions per channel
// Output position (oh, ow) with tap (ki, kj) reads input row
// ih = oh*sh + ki*dh - pt and column iw = ow*sw + kj*dw - pl; outside
// [0, H) x [0, W) it reads the padding.
import { dptError, fmtShape } from '../errors.js';

export interface WindowGeometry {
  readonly C: number; readonly H: number; readonly W: number;
  readonly O: number;
  readonly kh: number; readonly kw: number;
  readonly sh: number; readonly sw: number;
  readonly dh: number; readonly dw: number;
  readonly pt: number; readonly pl: number;
  /** Bottom and right padding (for exports and messages; the kernels need only Ho, Wo). */
  readonly pb: number; readonly pr: number;
  readonly Ho: number; readonly Wo: number;
}

export type Pair = number | readonly [number, number];
export type Padding = 'valid' | 'same' | Pair;

/** [height, width] of a size given as one number or a pair. */
export function pairOf(v: Pair | undefined, fallback: number): [number, number] {
  if (v === undefined) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/**
 * Padding [before, after] of one axis. 'same' is TF's: the output is
 * ceil(size / stride) and the total padding that needs is split with the
 * extra one after (PyTorch's padding='same' for stride 1 is the same split).
 */
function axisPadding(padding: Padding, axis: 0 | 1, size: number, k: number, s: number, d: number): [number, number] {
  if (padding === 'valid') return [0, 0];
  if (padding === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max(0, (out - 1) * s + d * (k - 1) + 1 - size);
    return [Math.floor(total / 2), total - Math.floor(total / 2)];
  }
  const p = pairOf(padding, 0)[axis];
  return [p, p];
}

/**
 * The geometry of a window op on a [C, H, W] input with O output channels;
 * `where` names the layer in errors (DPT_ERR_SHAPE: the input is not
 * [C, H, W], or the window does not fit the padded input).
 */
export function windowGeometry(
  where: string, inShape: readonly number[], O: number,
  kernel: Pair, stride: Pair | undefined, padding: Padding | undefined, dilation: Pair | undefined,
): WindowGeometry {
  if (inShape.length !== 3 || inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE',
      `${where}: expected an input of shape [C, H, W] (channels, height, width), got ${fmtShape(inShape)}; an image model's inputShape is e.g. [1, 28, 28]`);
  }
  const [C, H, W] = inShape;
  const [kh, kw] = pairOf(kernel, 1);
  const [sh, sw] = pairOf(stride, 1);
  const [dh, dw] = pairOf(dilation, 1);
  const pad = padding ?? 'valid';
  const [pt, pb] = axisPadding(pad, 0, H, kh, sh, dh);
  const [pl, pr] = axisPadding(pad, 1, W, kw, sw, dw);
  const reachH = dh * (kh - 1) + 1, reachW = dw * (kw - 1) + 1;
  if (H + pt + pb < reachH || W + pl + pr < reachW) {
    throw dptError('DPT_ERR_SHAPE',
      `${where}: a ${kh}x${kw} window${dh > 1 || dw > 1 ? ` with dilation ${dh}x${dw} (reach ${reachH}x${reachW})` : ''} ` +
      `does not fit the input ${fmtShape(inShape)} padded to ${H + pt + pb}x${W + pl + pr}; use a smaller window or more padding`);
  }
  const Ho = Math.floor((H + pt + pb - reachH) / sh) + 1;
  const Wo = Math.floor((W + pl + pr - reachW) / sw) + 1;
  return { C, H, W, O, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, Ho, Wo };
}

/** The window in a few words for messages: `5x5 stride 2x2 padding 1,1,1,1`. */
export function fmtWindow(g: WindowGeometry): string {
  const parts = [`${g.kh}x${g.kw}`];
  if (g.sh !== 1 || g.sw !== 1) parts.push(`stride ${g.sh}x${g.sw}`);
  if (g.pt || g.pl || g.pb || g.pr) parts.push(`padding ${g.pt},${g.pl},${g.pb},${g.pr}`);
  if (g.dh !== 1 || g.dw !== 1) parts.push(`dilation ${g.dh}x${g.dw}`);
  return parts.join(' ');
}
