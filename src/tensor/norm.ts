// The loops of batch normalization (src/nn/batchnorm.ts) behind one small
// interface, like the conv kernels (conv-kernels.ts): the pure-TypeScript
// implementation below is the reference; the WebAssembly SIMD one
// (wasm/norm.ts through src/tensor/wasm-norm.ts) is swapped in with
// setNormKernels() (useKernels() in setup.ts does it).
//
// Letters as in batchnorm.ts: a buffer is x (N, C, S), one statistic per
// channel c over its M = N * S values x[:, c, :].
//
// Exactness contract: both implementations give the same bits, every value
// one fixed chain of IEEE operations (f = round to float32):
//   a channel's sum   in float64, in eight lanes: lane l takes the values at
//                     positions s = l (mod 8), n then s ascending, from +0;
//                     the sum is ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
//                     With S = 1 only lane 0 is used: the plain sum in order
//                     (the bits the last-axis layer always had).
//   moments           mean = sum(x) / M; varBiased = sum((x - mean)^2) / M
//   normalize         xh = (x - mean) rstd in float64; xhat = f(xh);
//                     y = f(gamma xh + beta)
//   gradSums          sumG = sum(dy); sumGx = sum(dy xhat)
//   trainInputGrad    dx = f(k ((M dy - sumG) - xhat sumGx))
//   evalInputGrad     dx = f(dy k)
// with the per-channel values (mean, rstd, k, sums) in float64. The lanes
// are what 128-bit SIMD adds, two float64 at a time in four independent
// chains: a sum is latency-bound. The wasm batch norm of the CNN's first
// layer (8 x 32 x 24 x 24, training forward + backward) took 0.42 ms with
// two chains kept in module globals, 0.18 ms with four in locals (this
// TypeScript: 0.63 ms; 2026-12-07).

export interface NormKernels {
  readonly name: string;
  /** mean and varBiased (C) of x (N, C, S), per channel. */
  moments(mean: Float64Array, varBiased: Float64Array, x: Float32Array, N: number, C: number, S: number): void;
  /** xhat and y (N, C, S) from x with the per-channel mean, rstd, gamma and beta. */
  normalize(y: Float32Array, xhat: Float32Array, x: Float32Array, mean: ArrayLike<number>, rstd: Float64Array,
    gamma: Float32Array, beta: Float32Array, N: number, C: number, S: number): void;
  /** sumG and sumGx (C): the sums of dy and of dy * xhat per channel. */
  gradSums(sumG: Float64Array, sumGx: Float64Array, dy: Float32Array, xhat: Float32Array, N: number, C: number, S: number): void;
  /** dx = k ((M dy - sumG) - xhat sumGx) per channel, M = N * S: the gradient through the batch statistics. */
  trainInputGrad(dx: Float32Array, dy: Float32Array, xhat: Float32Array, k: Float64Array, sumG: Float64Array, sumGx: Float64Array,
    N: number, C: number, S: number): void;
  /** dx = dy k per channel: the gradient of a fixed affine map. */
  evalInputGrad(dx: Float32Array, dy: Float32Array, k: Float64Array, N: number, C: number, S: number): void;
}

/** The eight lanes of the sums of the channel being summed, kept from row to row. */
const laneA = new Float64Array(8), laneB = new Float64Array(8);

/** Lane s mod 8 of l += a[o + s] for the row a[o, o + S). */
function addRow(l: Float64Array, a: Float32Array, o: number, S: number): void {
  let l0 = l[0], l1 = l[1], l2 = l[2], l3 = l[3], l4 = l[4], l5 = l[5], l6 = l[6], l7 = l[7];
  let s = 0;
  for (; s + 8 <= S; s += 8) {
    const p = o + s;
    l0 += a[p]; l1 += a[p + 1]; l2 += a[p + 2]; l3 += a[p + 3];
    l4 += a[p + 4]; l5 += a[p + 5]; l6 += a[p + 6]; l7 += a[p + 7];
  }
  l[0] = l0; l[1] = l1; l[2] = l2; l[3] = l3; l[4] = l4; l[5] = l5; l[6] = l6; l[7] = l7;
  for (let j = 0; s + j < S; j++) l[j] += a[o + s + j];
}

/** Lane s mod 8 of l += (a[o + s] - mu)^2. */
function addRowSquares(l: Float64Array, a: Float32Array, o: number, S: number, mu: number): void {
  let l0 = l[0], l1 = l[1], l2 = l[2], l3 = l[3], l4 = l[4], l5 = l[5], l6 = l[6], l7 = l[7];
  let s = 0;
  for (; s + 8 <= S; s += 8) {
    const p = o + s;
    const d0 = a[p] - mu, d1 = a[p + 1] - mu, d2 = a[p + 2] - mu, d3 = a[p + 3] - mu;
    const d4 = a[p + 4] - mu, d5 = a[p + 5] - mu, d6 = a[p + 6] - mu, d7 = a[p + 7] - mu;
    l0 += d0 * d0; l1 += d1 * d1; l2 += d2 * d2; l3 += d3 * d3;
    l4 += d4 * d4; l5 += d5 * d5; l6 += d6 * d6; l7 += d7 * d7;
  }
  l[0] = l0; l[1] = l1; l[2] = l2; l[3] = l3; l[4] = l4; l[5] = l5; l[6] = l6; l[7] = l7;
  for (let j = 0; s + j < S; j++) {
    const d = a[o + s + j] - mu;
    l[j] += d * d;
  }
}

/** Lane s mod 8 of l += a[o + s] b[o + s]. */
function addRowProducts(l: Float64Array, a: Float32Array, b: Float32Array, o: number, S: number): void {
  let l0 = l[0], l1 = l[1], l2 = l[2], l3 = l[3], l4 = l[4], l5 = l[5], l6 = l[6], l7 = l[7];
  let s = 0;
  for (; s + 8 <= S; s += 8) {
    const p = o + s;
    l0 += a[p] * b[p]; l1 += a[p + 1] * b[p + 1]; l2 += a[p + 2] * b[p + 2]; l3 += a[p + 3] * b[p + 3];
    l4 += a[p + 4] * b[p + 4]; l5 += a[p + 5] * b[p + 5]; l6 += a[p + 6] * b[p + 6]; l7 += a[p + 7] * b[p + 7];
  }
  l[0] = l0; l[1] = l1; l[2] = l2; l[3] = l3; l[4] = l4; l[5] = l5; l[6] = l6; l[7] = l7;
  for (let j = 0; s + j < S; j++) l[j] += a[o + s + j] * b[o + s + j];
}

/** ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
function laneTotal(l: Float64Array): number {
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

export const tsNorm: NormKernels = {
  name: 'typescript',

  moments(mean, varBiased, x, N, C, S) {
    const M = N * S;
    for (let c = 0; c < C; c++) {
      laneA.fill(0);
      for (let n = 0; n < N; n++) addRow(laneA, x, (n * C + c) * S, S);
      const mu = laneTotal(laneA) / M;
      laneA.fill(0);
      for (let n = 0; n < N; n++) addRowSquares(laneA, x, (n * C + c) * S, S, mu);
      mean[c] = mu;
      varBiased[c] = laneTotal(laneA) / M;
    }
  },

  normalize(y, xhat, x, mean, rstd, gamma, beta, N, C, S) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * S;
        const mu = mean[c], r = rstd[c], g = gamma[c], b = beta[c];
        for (let s = 0; s < S; s++) {
          const xh = (x[o + s] - mu) * r;
          xhat[o + s] = xh;
          y[o + s] = g * xh + b;
        }
      }
    }
  },

  gradSums(sumG, sumGx, dy, xhat, N, C, S) {
    for (let c = 0; c < C; c++) {
      laneA.fill(0);
      laneB.fill(0);
      for (let n = 0; n < N; n++) {
        const o = (n * C + c) * S;
        addRow(laneA, dy, o, S);
        addRowProducts(laneB, dy, xhat, o, S);
      }
      sumG[c] = laneTotal(laneA);
      sumGx[c] = laneTotal(laneB);
    }
  },

  trainInputGrad(dx, dy, xhat, k, sumG, sumGx, N, C, S) {
    const M = N * S;
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * S;
        const kc = k[c], sg = sumG[c], sgx = sumGx[c];
        for (let s = 0; s < S; s++) dx[o + s] = kc * (M * dy[o + s] - sg - xhat[o + s] * sgx);
      }
    }
  },

  evalInputGrad(dx, dy, k, N, C, S) {
    for (let n = 0; n < N; n++) {
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * S;
        const kc = k[c];
        for (let s = 0; s < S; s++) dx[o + s] = dy[o + s] * kc;
      }
    }
  },
};

let active: NormKernels = tsNorm;

/** The batch normalization kernels the layer calls. */
export function normKernels(): NormKernels {
  return active;
}

/** Swap the implementation (null: back to the reference). */
export function setNormKernels(k: NormKernels | null): void {
  active = k ?? tsNorm;
}
