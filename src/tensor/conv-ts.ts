// The pure-TypeScript reference of the convolution kernels (the contract is
// in conv.ts; the pooling half is pool-ts.ts): im2col and the gemm of
// kernels.ts, the classic way to turn a convolution into one matrix
// product per micro-shard.
//
//   col (K, N*P): column (n, oh, ow) holds the K taps that output position
//                 reads (+0 in the padding), row p one tap for every position
//   forward      Y (O, N*P) = [b +] W (O, K) col; y is Y's columns put back
//                in NCHW order
//   backward     dY (O, N*P) = dy in Y's order; db += row sums of dY;
//                dW += dY col^T; dcol (K, N*P) = W^T dY; dx = col2im(dcol)
// The gemm sums over its K in order, one float32 chain per element: the
// chains of the contract. col is what forward keeps for backward.
import type { WindowGeometry } from '../nn/conv-geometry.js';
import type { ConvKernels } from './conv-kernels.js';
import { gemm } from './kernels.js';
import { tsPoolKernels } from './pool-ts.js';

/** col (K, N*P) from x (N, C, H, W). */
export function im2col(col: Float32Array, x: Float32Array, g: WindowGeometry, N: number): void {
  const { C, H, W, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const P = Ho * Wo, NP = N * P;
  for (let c = 0; c < C; c++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = ((c * kh + ki) * kw + kj) * NP;
        for (let n = 0; n < N; n++) {
          const plane = (n * C + c) * H * W;
          for (let oh = 0; oh < Ho; oh++) {
            const ih = oh * sh + ki * dh - pt;
            const o = row + n * P + oh * Wo;
            if (ih < 0 || ih >= H) {
              col.fill(0, o, o + Wo);
              continue;
            }
            const xr = plane + ih * W;
            for (let ow = 0; ow < Wo; ow++) {
              const iw = ow * sw + kj * dw - pl;
              col[o + ow] = iw >= 0 && iw < W ? x[xr + iw] : 0;
            }
          }
        }
      }
    }
  }
}

/** dx (N, C, H, W) = the sum of dcol (K, N*P) over the taps that read each cell, taps in order. */
export function col2im(dx: Float32Array, dcol: Float32Array, g: WindowGeometry, N: number): void {
  const { C, H, W, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
  const P = Ho * Wo, NP = N * P;
  dx.fill(0, 0, N * C * H * W);
  for (let c = 0; c < C; c++) {
    for (let ki = 0; ki < kh; ki++) {
      for (let kj = 0; kj < kw; kj++) {
        const row = ((c * kh + ki) * kw + kj) * NP;
        for (let n = 0; n < N; n++) {
          const plane = (n * C + c) * H * W;
          for (let oh = 0; oh < Ho; oh++) {
            const ih = oh * sh + ki * dh - pt;
            if (ih < 0 || ih >= H) continue;
            const o = row + n * P + oh * Wo;
            const xr = plane + ih * W;
            for (let ow = 0; ow < Wo; ow++) {
              const iw = ow * sw + kj * dw - pl;
              if (iw >= 0 && iw < W) dx[xr + iw] += dcol[o + ow];
            }
          }
        }
      }
    }
  }
}

/** y (N, O, P) from Y (O, N*P): the columns of sample n, channel by channel. */
function fromChannelMajor(y: Float32Array, Y: Float32Array, O: number, N: number, P: number): void {
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < N; n++) {
      const src = o * N * P + n * P;
      y.set(Y.subarray(src, src + P), (n * O + o) * P);
    }
  }
}

/** Y (O, N*P) from y (N, O, P). */
function toChannelMajor(Y: Float32Array, y: Float32Array, O: number, N: number, P: number): void {
  for (let o = 0; o < O; o++) {
    for (let n = 0; n < N; n++) {
      const src = (n * O + o) * P;
      Y.set(y.subarray(src, src + P), o * N * P + n * P);
    }
  }
}

const taps = (g: WindowGeometry): number => g.C * g.kh * g.kw;

export const tsConvKernels: ConvKernels = {
  name: 'typescript',
  ...tsPoolKernels,

  convKeepLength: (g, N) => taps(g) * N * g.Ho * g.Wo,
  convScratchLength: (g, N) => (g.O + taps(g)) * N * g.Ho * g.Wo,

  convForward(y, x, W, b, g, N, keep, scratch) {
    const { O } = g, K = taps(g), P = g.Ho * g.Wo, NP = N * P;
    im2col(keep, x, g, N);
    const Y = scratch.subarray(0, O * NP);
    if (b !== null) {
      for (let o = 0; o < O; o++) Y.fill(b[o], o * NP, (o + 1) * NP);
    }
    gemm(false, false, O, NP, K, W, keep, Y, b !== null);
    fromChannelMajor(y, Y, O, N, P);
  },

  convBackward(dx, dW, db, dy, _x, W, g, N, keep, scratch) {
    const { O } = g, K = taps(g), P = g.Ho * g.Wo, NP = N * P;
    const dY = scratch.subarray(0, O * NP);
    toChannelMajor(dY, dy, O, N, P);
    if (db !== null) {
      for (let o = 0; o < O; o++) {
        let s = db[o];
        for (let j = o * NP; j < (o + 1) * NP; j++) s = Math.fround(s + dY[j]);
        db[o] = s;
      }
    }
    // dW (O, K) += dY (O, NP) col^T; col is stored (K, NP), hence transB.
    gemm(false, true, O, K, NP, dY, keep, dW, true);
    if (dx === null) return;
    // dcol (K, NP) = W^T dY; W is stored (O, K), hence transA.
    const dcol = scratch.subarray(O * NP, (O + K) * NP);
    gemm(true, false, K, NP, O, W, dY, dcol, false);
    col2im(dx, dcol, g, N);
  },
};
