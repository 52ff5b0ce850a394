// The pure-TypeScript reference of the pooling kernels (the contract is in
// conv.ts): a window per output value, taps in (ki, kj) order, taps in
// the padding skipped. Max pooling records which tap won (argmax, the
// cell's index ih * W + iw within its plane) so that backward routes the
// gradient without a second search.
import type { ConvKernels } from './conv-kernels.js';

// Along one axis, output o's taps 0..k-1 read input o*s - pad + tap*d: the
// first tap inside [0, size) and one past the last.
function tapLo(o: number, s: number, d: number, pad: number, k: number): number {
  let lo = 0;
  while (lo < k && o * s - pad + lo * d < 0) lo++;
  return lo;
}
function tapHi(o: number, s: number, d: number, pad: number, k: number, size: number): number {
  let hi = k;
  while (hi > 0 && o * s - pad + (hi - 1) * d >= size) hi--;
  return hi;
}

type PoolKernels = Pick<ConvKernels, 'maxPoolForward' | 'maxPoolBackward' | 'avgPoolForward' | 'avgPoolBackward'>;

export const tsPoolKernels: PoolKernels = {
  maxPoolForward(y, argmax, x, g, N) {
    const { C, H, W, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
    for (let plane = 0; plane < N * C; plane++) {
      const xp = plane * H * W;
      let o = plane * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) {
        const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
        for (let ow = 0; ow < Wo; ow++, o++) {
          const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
          let best = 0, at = -1;
          for (let ki = k0; ki < k1; ki++) {
            const row = (oh * sh + ki * dh - pt) * W;
            for (let kj = j0; kj < j1; kj++) {
              const cell = row + ow * sw + kj * dw - pl;
              const v = x[xp + cell];
              // NOTE: the first tap starts the search; a NaN beats any number (as PyTorch propagates it).
              if (at < 0 || v > best || v !== v) {
                best = v;
                at = cell;
              }
            }
          }
          y[o] = best;
          argmax[o] = at;
        }
      }
    }
  },

  maxPoolBackward(dx, dy, argmax, g, N) {
    const { C, H, W, Ho, Wo } = g;
    dx.fill(0, 0, N * C * H * W);
    for (let plane = 0; plane < N * C; plane++) {
      const xp = plane * H * W;
      for (let o = plane * Ho * Wo; o < (plane + 1) * Ho * Wo; o++) dx[xp + argmax[o]] += dy[o];
    }
  },

  avgPoolForward(y, x, g, N, countIncludePad) {
    const { C, H, W, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
    for (let plane = 0; plane < N * C; plane++) {
      const xp = plane * H * W;
      let o = plane * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) {
        const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
        for (let ow = 0; ow < Wo; ow++, o++) {
          const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
          let s = 0;
          for (let ki = k0; ki < k1; ki++) {
            const row = xp + (oh * sh + ki * dh - pt) * W + ow * sw - pl;
            for (let kj = j0; kj < j1; kj++) s = Math.fround(s + x[row + kj * dw]);
          }
          y[o] = s / (countIncludePad ? kh * kw : (k1 - k0) * (j1 - j0));
        }
      }
    }
  },

  avgPoolBackward(dx, dy, g, N, countIncludePad) {
    const { C, H, W, kh, kw, sh, sw, dh, dw, pt, pl, Ho, Wo } = g;
    dx.fill(0, 0, N * C * H * W);
    for (let plane = 0; plane < N * C; plane++) {
      const xp = plane * H * W;
      let o = plane * Ho * Wo;
      for (let oh = 0; oh < Ho; oh++) {
        const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
        for (let ow = 0; ow < Wo; ow++, o++) {
          const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
          const share = Math.fround(dy[o] / (countIncludePad ? kh * kw : (k1 - k0) * (j1 - j0)));
          for (let ki = k0; ki < k1; ki++) {
            const row = xp + (oh * sh + ki * dh - pt) * W + ow * sw - pl;
            for (let kj = j0; kj < j1; kj++) dx[row + kj * dw] += share;
          }
        }
      }
    }
  },
};
