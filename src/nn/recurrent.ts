// Small pieces shared by the LSTM and GRU layers (lstm.ts, gru.ts).
import { dptError, fmtShape } from '../errors.js';
import { sizeOf, type ParamSpec } from './layer.js';

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
 * db (N) += sum over the R rows of dG (R, N), row 0 first. Every partial sum
 * is stored in db (a float32), so summing rows [0, R1) in one call and
 * [R1, R) in a second gives the same bits as one call over [0, R).
 */
export function addRowSums(db: Float32Array, dG: Float32Array, R: number, N: number): void {
  for (let r = 0; r < R; r++) {
    const row = r * N;
    for (let j = 0; j < N; j++) db[j] += dG[row + j];
  }
}

/** out (cols, rows) = a (rows, cols)^T; converts between PyTorch's [out, in] and our [in, out]. */
export function transposeInto(out: Float32Array, a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}
