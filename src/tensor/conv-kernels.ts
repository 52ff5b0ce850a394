// The hot loops of the convolutional layers (src/nn/conv2d.ts, pool2d.ts)
// behind one small interface, like the gemm of kernels.ts and the cells of
// cells.ts: the convolution's forward pass and both gradients, max and
// average pooling. The pure-TypeScript implementation (conv-ts.ts,
// pool-ts.ts) is the reference; the WebAssembly SIMD one (wasm/conv.ts,
// wasm/pool.ts through src/tensor/wasm-conv.ts) is swapped in with
// setConvKernels() (conv.ts; useKernels() in setup.ts does it).
//
// Letters as in src/nn/conv-geometry.ts: N samples, C x H x W the input,
// O x Ho x Wo the output, P = Ho * Wo, K = C * kh * kw the taps of one
// output value, tap p = (c * kh + ki) * kw + kj. Buffers are NCHW:
// x (N, C, H, W), y (N, O, Ho, Wo); the filters W (O, C, kh, kw) are
// PyTorch's layout, so W is an (O, K) matrix; b (O).
//
// Exactness contract: both implementations give the same bits (as the gemm
// does), for any N and whichever samples share a call, because every value
// is one fixed chain of float32 roundings (f = round to float32):
//   convolution  y[n, o, oh, ow] = b[o] + sum over p = 0..K-1 in order of
//                f(W[o, p] * xp), each partial sum f()'d, xp the input at
//                tap p (+0 in the padding); without bias the chain starts
//                at +0.
//   filters      dW[o, p] += sum over n, then (oh, ow) in order of
//                f(dy[n, o, oh, ow] * xp), the chain starting from dW[o, p].
//   bias         db[o] += sum over n, then (oh, ow) in order of dy.
//   input        dcol[p, n, oh, ow] = sum over o in order of f(W[o, p] * dy),
//                from +0; dx[n, c, ih, iw] = sum over the taps p of
//                channel c in order (ki, then kj) of the dcol values that
//                read (ih, iw), from +0 (a tap that reads the cell at no
//                output position adds nothing).
//   max pool     y = the first largest value of the window in (ki, kj)
//                order, a NaN winning (taps in the padding are skipped);
//                argmax[n, c, oh, ow] = ih * W + iw of that tap, as a float
//                (exact: H * W < 2^24 is checked by the layer).
//                dx[argmax] += dy, over the outputs in order, dx from +0.
//   avg pool     y = f(s / d), s the sum of the window's taps inside the
//                input in (ki, kj) order from +0, d = kh * kw
//                (countIncludePad) or the number of those taps; the
//                quotient in float64, rounded once.
//                dx[tap] += f(dy / d) for every tap inside the input, over
//                the outputs in order, dx from +0.
// Each sample's y and dx depend on that sample alone; dW and db sum over
// the samples of the call in order, so a micro-shard (the unit of
// reduction) gets the same bits wherever it is computed.
import type { WindowGeometry } from '../nn/conv-geometry.js';

export interface ConvKernels {
  readonly name: string;
  /** Floats of the `keep` buffer that convForward fills and convBackward reads, for N samples. */
  convKeepLength(g: WindowGeometry, N: number): number;
  /** Floats of the scratch buffer convForward and convBackward use, for N samples. */
  convScratchLength(g: WindowGeometry, N: number): number;
  /**
   * y (N, O, Ho, Wo) = conv(x (N, C, H, W), W (O, C, kh, kw)) + b (O), b
   * null: no bias. Overwrites y; fills keep for convBackward.
   */
  convForward(y: Float32Array, x: Float32Array, W: Float32Array, b: Float32Array | null,
    g: WindowGeometry, N: number, keep: Float32Array, scratch: Float32Array): void;
  /**
   * Backward of the last convForward (same x, W, keep): ACCUMULATES dW
   * (O, C, kh, kw) and db (O) (null: no bias), overwrites dx (N, C, H, W)
   * unless dx is null.
   */
  convBackward(dx: Float32Array | null, dW: Float32Array, db: Float32Array | null, dy: Float32Array,
    x: Float32Array, W: Float32Array, g: WindowGeometry, N: number, keep: Float32Array, scratch: Float32Array): void;
  /** y (N, C, Ho, Wo) and argmax (same shape) from x (N, C, H, W); g.O = g.C. */
  maxPoolForward(y: Float32Array, argmax: Float32Array, x: Float32Array, g: WindowGeometry, N: number): void;
  /** Overwrites dx (N, C, H, W) from dy and the argmax of maxPoolForward. */
  maxPoolBackward(dx: Float32Array, dy: Float32Array, argmax: Float32Array, g: WindowGeometry, N: number): void;
  avgPoolForward(y: Float32Array, x: Float32Array, g: WindowGeometry, N: number, countIncludePad: boolean): void;
  /** Overwrites dx (N, C, H, W). */
  avgPoolBackward(dx: Float32Array, dy: Float32Array, g: WindowGeometry, N: number, countIncludePad: boolean): void;
}
