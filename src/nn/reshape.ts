// Flatten and Reshape: change the per-sample shape, not the data. A
// row-major buffer of B samples of shape S is also B samples of any shape S'
// with the same size, so forward and backward hand the buffer through
// unchanged (a view, no copy) and only outShape differs.
//
// Dimension letters: B samples, E = size of the per-sample shape.
import { dptError, fmtShape } from '../errors.js';
import type { ReshapeSpec } from '../model/spec.js';
import { sizeOf, type Layer, checkForwardInput } from './layer.js';

/** The first n floats of buf: buf itself when it is exactly that long. */
function exactly(buf: Float32Array, n: number): Float32Array {
  return buf.length === n ? buf : buf.subarray(0, n);
}

function createView(index: number, type: string, inShape: readonly number[], outShape: readonly number[]): Layer {
  const where = `layers[${index}] (${type})`;
  const E = sizeOf(inShape);
  let n = 0; // elements of the last forward
  return {
    type,
    index,
    inShape: [...inShape],
    outShape: [...outShape],
    params: [],
    stats: [],
    bind() {},
    forward(x, batch) {
      n = batch * E;
      checkForwardInput(where, x, n, batch, inShape);
      return exactly(x, n);
    },
    backward(dy, batch, needDx) {
      if (batch * E !== n || dy.length < n) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${n} floats)`);
      }
      return needDx ? exactly(dy, n) : null;
    },
  };
}

function checkDims(where: string, inShape: readonly number[]): void {
  if (inShape.length < 1) {
    throw dptError('DPT_ERR_SHAPE', `${where}: expected an input of rank >= 1, got ${fmtShape(inShape)}`);
  }
  if (inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: input dims must be positive integers, got ${fmtShape(inShape)}`);
  }
}

/** [d0, d1, ...] -> [d0 * d1 * ...]. */
export function createFlatten(index: number, inShape: readonly number[]): Layer {
  checkDims(`layers[${index}] (flatten)`, inShape);
  return createView(index, 'flatten', inShape, [sizeOf(inShape)]);
}

/** inShape -> spec.shape; the sizes must agree. */
export function createReshape(index: number, inShape: readonly number[], spec: ReshapeSpec): Layer {
  const where = `layers[${index}] (reshape)`;
  checkDims(where, inShape);
  if (spec.shape.length < 1 || spec.shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: target shape must be positive integers, got ${fmtShape(spec.shape)}`);
  }
  if (sizeOf(spec.shape) !== sizeOf(inShape)) {
    throw dptError(
      'DPT_ERR_SHAPE',
      `${where}: cannot reshape ${fmtShape(inShape)} (${sizeOf(inShape)} elements) to ${fmtShape(spec.shape)} (${sizeOf(spec.shape)} elements); the sizes must be equal`,
    );
  }
  return createView(index, 'reshape', inShape, spec.shape);
}
