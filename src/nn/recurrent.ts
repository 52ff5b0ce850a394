// Small pieces shared by the LSTM and GRU layers (lstm.ts, gru.ts).
import { dptError, fmtShape } from '../errors.js';
import { allocator } from '../tensor/alloc.js';
import { cells } from '../tensor/cells.js';
import type { InitKind, ParamSpec, Workspace } from './layer.js';

/** Checks a recurrent layer's per-sample input shape [T, F] and returns it. */
export function sequenceShape(where: string, inShape: readonly number[]): [number, number] {
  if (inShape.length !== 2 || inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE',
      `${where}: expected a per-sample input shape [T, F] (timesteps, features), got ${fmtShape(inShape)}; ` +
      'put a reshape layer before it (e.g. [784] -> [28, 28])');
  }
  return [inShape[0], inShape[1]];
}

/**
 * The four parameters of an LSTM (G = 4H) or GRU (G = 3H) over F features,
 * in PyTorch's order with our [in, out] layout: W_ih (F, G), W_hh (H, G),
 * b_ih (G), b_hh (G). Weights decay, biases do not.
 */
export function recurrentParams(F: number, H: number, G: number, kernelInit: InitKind): ParamSpec[] {
  return [
    { name: 'W_ih', shape: [F, G], init: kernelInit, fanIn: F, fanOut: G, decay: true },
    { name: 'W_hh', shape: [H, G], init: kernelInit, fanIn: H, fanOut: G, decay: true },
    { name: 'b_ih', shape: [G], init: 'zeros', fanIn: F, fanOut: G, decay: false },
    { name: 'b_hh', shape: [G], init: 'zeros', fanIn: H, fanOut: G, decay: false },
  ];
}

/**
 * db (N) += sum over the R rows of dG (R, N), row 0 first, with the active
 * kernels (src/tensor/cells.ts). Every partial sum is stored in db (a
 * float32), so summing rows [0, R1) in one call and [R1, R) in a second
 * gives the same bits as one call over [0, R).
 */
export function addRowSums(db: Float32Array, dG: Float32Array, R: number, N: number): void {
  cells().addRowSums(db, dG, R, N);
}

/**
 * arr itself when the active kernels use it in place (src/tensor/alloc.ts),
 * else a copy of its first n floats in ws: one copy per layer call instead
 * of one per timestep.
 */
export function inPlace(arr: Float32Array, n: number, ws: Workspace): Float32Array {
  if (allocator().owns(arr)) return arr;
  const copy = ws.get(n);
  copy.set(arr.subarray(0, n));
  return copy;
}

/** out (cols, rows) = a (rows, cols)^T; converts between PyTorch's [out, in] and our [in, out]. */
export function transposeInto(out: Float32Array, a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}
