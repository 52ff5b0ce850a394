// Dense (fully connected) layer: y = x W + b over the LAST axis.
//
// Dimension letters:
//   R  rows: batch times the product of the leading per-sample dims, so an
//      input [T, I] is T rows per sample and the layer applies per timestep
//   I  input features (last axis of the input)
//   O  output units (spec.units)
//
// W is stored (I, O), the Keras / TF.js layout, so the forward pass is one
// plain gemm with no transpose: y (R, O) = x (R, I) W (I, O) + b (O).
// The fixtures give PyTorch's W (O, I) and also W_in_out (I, O): ours is the
// latter. The activation in a DenseSpec is not applied here; the model
// builder expands it into its own layer.
import { dptError, fmtShape } from '../errors.js';
import type { DenseSpec } from '../model/spec.js';
import { gemm } from '../tensor/kernels.js';
import { sizeOf, Workspace, type Layer, type ParamSpec, checkBind, checkForwardInput } from './layer.js';

/** y (R, O) = x (R, I) W (I, O) + b (O); b null means no bias. Overwrites y. */
export function denseForward(
  y: Float32Array, x: Float32Array, W: Float32Array, b: Float32Array | null,
  R: number, I: number, O: number,
): void {
  if (b !== null) {
    // Start every row from the bias, then add the products onto it.
    const bias = b.length === O ? b : b.subarray(0, O);
    for (let r = 0; r < R; r++) y.set(bias, r * O);
    gemm(false, false, R, O, I, x, W, y, true);
  } else {
    gemm(false, false, R, O, I, x, W, y, false);
  }
}

/**
 * Backward of denseForward. ACCUMULATES into dW (I, O) and db (O):
 *   dW += x^T dy,  db += sum over rows of dy.
 * Overwrites dx (R, I) = dy W^T when dx is not null.
 */
export function denseBackward(
  dx: Float32Array | null, dW: Float32Array, db: Float32Array | null,
  dy: Float32Array, x: Float32Array, W: Float32Array,
  R: number, I: number, O: number,
): void {
  // dW (I, O) += x^T (I, R) dy (R, O); x is stored (R, I), hence transA.
  gemm(true, false, I, O, R, x, dy, dW, true);
  if (db !== null) {
    for (let r = 0; r < R; r++) {
      const row = r * O;
      for (let o = 0; o < O; o++) db[o] += dy[row + o];
    }
  }
  // dx (R, I) = dy (R, O) W^T (O, I); W is stored (I, O) = (N, K), hence transB.
  if (dx !== null) gemm(false, true, R, I, O, dy, W, dx, false);
}

const EMPTY = new Float32Array(0);

export function createDense(index: number, inShape: readonly number[], spec: DenseSpec): Layer {
  const where = `layers[${index}] (dense)`;
  if (inShape.length < 1) {
    throw dptError('DPT_ERR_SHAPE', `${where}: expected an input of rank >= 1, got ${fmtShape(inShape)}`);
  }
  if (inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: input dims must be positive integers, got ${fmtShape(inShape)}`);
  }
  const I = inShape[inShape.length - 1];
  const O = spec.units;
  const T = sizeOf(inShape) / I; // rows per sample (1 for a flat input)
  const outShape = [...inShape.slice(0, -1), O];
  const useBias = spec.useBias !== false;

  const params: ParamSpec[] = [
    { name: 'W', shape: [I, O], init: spec.kernelInit ?? 'glorot_uniform', fanIn: I, fanOut: O, decay: true },
  ];
  if (useBias) params.push({ name: 'b', shape: [O], init: 'zeros', fanIn: I, fanOut: O, decay: false });

  let W: Float32Array = EMPTY;         // (I, O)
  let dW: Float32Array = EMPTY;        // (I, O)
  let b: Float32Array | null = null;   // (O)
  let db: Float32Array | null = null;  // (O)
  let x: Float32Array = EMPTY;         // (R, I) the input, kept for backward
  let rows = 0;                        // R of the last forward
  const y = new Workspace();           // (R, O)
  const dx = new Workspace();          // (R, I)

  return {
    type: 'dense',
    index,
    inShape: [...inShape],
    outShape,
    params,
    stats: [],
    bind(p, g) {
      checkBind(where, params, p, g);
      W = p[0]; dW = g[0];
      if (useBias) { b = p[1]; db = g[1]; }
    },
    forward(input, batch) {
      rows = batch * T;
      checkForwardInput(where, input, rows * I, batch, inShape);
      x = input;
      const out = y.get(rows * O);
      denseForward(out, x, W, b, rows, I, O);
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch * T !== rows || dy.length < rows * O) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${rows} rows of ${fmtShape(outShape)})`);
      }
      const din = needDx ? dx.get(rows * I) : null;
      denseBackward(din, dW, db, dy, x, W, rows, I, O);
      return din;
    },
  };
}
