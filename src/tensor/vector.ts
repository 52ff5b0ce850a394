// The vector work of a training step outside the matrix products and the
// cells, behind one small interface like kernels.ts and cells.ts: the adds
// of the reduction tree (src/reduce/tree.ts), the division of the reduced
// sum by the batch size and the SGD update (src/train/step.ts,
// src/optim/sgd.ts). The pure-TypeScript implementation below is the
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
