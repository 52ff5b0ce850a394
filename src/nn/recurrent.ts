// Small pieces shared by the LSTM and GRU layers (lstm.ts, gru.ts).
import { dptError, fmtShape } from '../errors.js';
import { allocator } from '../tensor/alloc.js';
import { cells } from '../tensor/cells.js';
import { sizeOf, type ParamSpec, type Workspace } from './layer.js';

/** Checks a recurrent layer's per-sample input shape [T, F] and returns it. */
export function sequenceShape(where: string, inShape: readonly number[]): [number, number] {
  if (inShape.length !== 2 || inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE',
      `${where}: expected a per-sample input shape [T, F] (timesteps, features), got ${fmtShape(inShape)}; ` +
      'put a reshape layer before it (e.g. [784] -> [28, 28])');
  }
  return [inShape[0], inShape[1]];
}

/** Checks that bind() got one view of the right length per parameter. */
export function checkBind(where: string, params: readonly ParamSpec[], p: Float32Array[], g: Float32Array[]): void {
  for (let i = 0; i < params.length; i++) {
    const n = sizeOf(params[i].shape);
    if (p[i]?.length !== n || g[i]?.length !== n) {
      throw dptError('DPT_ERR_SHAPE',
        `${where}: parameter ${params[i].name} needs ${n} floats ${fmtShape(params[i].shape)}, got p ${p[i]?.length}, g ${g[i]?.length}`);
    }
  }
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
