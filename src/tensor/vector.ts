// The vector work of a training step outside the matrix products and the
// cells, behind one small interface like kernels.ts and cells.ts: the adds
// of the reduction tree (src/reduce/tree.ts), the division of the reduced
// sum by the batch size and the SGD and Adam updates (src/train/step.ts,
// src/optim/sgd.ts, adam.ts). The pure-TypeScript implementation below is the
// reference; the WebAssembly one (wasm/vector.ts, through
// src/tensor/wasm-kernels.ts) is swapped in with setVectorKernels()
// (useKernels() in setup.ts does it). Both give the same bits: each element
// is one chain of float32 roundings, written out below.

export interface VectorKernels {
  readonly name: string;
  /** out[i] = float32(out[i] + b[i]) for i < n. */
  addInto(out: Float32Array, b: Float32Array, n: number): void;
  /** x[i] = float32(x[i] * s) for i < n (s a float64: 1 / batch size). */
  scale(x: Float32Array, n: number, s: number): void;
  /**
   * SGD on params[from, to) with the mean gradient grad (same indices),
   * PyTorch's formulas (src/optim/sgd.ts), every product with a float64
   * factor rounded once: with `decay`, g = f(g + f(wd * w)); with momentum
   * (mu > 0), v = f(f(mu * v) + g) and step = nesterov ? f(g + f(mu * v)) : v;
   * w = f(w - f(lr * step)). velocity may be null when mu is 0.
   */
  sgdRange(params: Float32Array, grad: Float32Array, velocity: Float32Array | null, from: number, to: number,
    lr: number, mu: number, wd: number, nesterov: boolean, decay: boolean): void;
  /**
   * Adam / AdamW on params[from, to) with the mean gradient grad and the
   * moments m, v (same indices), src/optim/adam.ts's formulas, each element
   * in float64 from its float32 w, g, m, v, the three results rounded once:
   *   with decay: adamw (decoupled) w = w * shrink, else g = g + wd * w;
   *   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g g;
   *   w' = w - stepSize m' / (sqrt(v') / sqrtBc2 + eps).
   */
  adamRange(params: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, from: number, to: number,
    b1: number, b2: number, stepSize: number, sqrtBc2: number, eps: number,
    wd: number, shrink: number, decoupled: boolean, decay: boolean): void;
  /** y[i] = x[i] > 0 ? x[i] : 0 for i < n (a NaN gives 0). */
  reluForward(y: Float32Array, x: Float32Array, n: number): void;
  /** dx[i] = y[i] > 0 ? dy[i] : 0 for i < n (relu'(0) = 0). */
  reluBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, n: number): void;
}

const f = Math.fround;

export const tsVector: VectorKernels = {
  name: 'typescript',
  addInto(out, b, n) {
    for (let i = 0; i < n; i++) out[i] += b[i];
  },
  scale(x, n, s) {
    for (let i = 0; i < n; i++) x[i] = x[i] * s;
  },
  sgdRange(params, grad, velocity, from, to, lr, mu, wd, nesterov, decay) {
    for (let i = from; i < to; i++) {
      let g = grad[i];
      if (decay) g = f(g + f(wd * params[i]));
      let step = g;
      if (mu !== 0) {
        const vi = f(f(mu * velocity![i]) + g);
        velocity![i] = vi;
        step = nesterov ? f(g + f(mu * vi)) : vi;
      }
      params[i] = f(params[i] - f(lr * step));
    }
  },
  adamRange(params, grad, m, v, from, to, b1, b2, stepSize, sqrtBc2, eps, wd, shrink, decoupled, decay) {
    const c1 = 1 - b1, c2 = 1 - b2;
    for (let i = from; i < to; i++) {
      let w = params[i];
      let g = grad[i];
      if (decay) {
        if (decoupled) w = w * shrink;
        else g = g + wd * w;
      }
      const mi = b1 * m[i] + c1 * g;
      const vi = b2 * v[i] + c2 * g * g;
      m[i] = mi;
      v[i] = vi;
      params[i] = w - stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps);
    }
  },
  reluForward(y, x, n) {
    for (let i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
  },
  reluBackward(dx, dy, y, n) {
    for (let i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
  },
};

let active: VectorKernels = tsVector;

/** The vector kernels the reduction and the optimizer call. */
export function vector(): VectorKernels {
  return active;
}

/** Swap the implementation (null: back to the reference). */
export function setVectorKernels(k: VectorKernels | null): void {
  active = k ?? tsVector;
}
