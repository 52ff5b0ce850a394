// Activations: relu, sigmoid, tanh (elementwise) and softmax over the last
// axis; plus log_softmax, which no layer uses (the loss fuses it) but the
// conformance runner checks.
//
// Dimension letters: N elements (elementwise ops); R rows and C classes
// (the last axis) for the softmax family, R = N / C.
//
// Every backward here is written in terms of the saved OUTPUT y, so a layer
// keeps nothing but its own output buffer. Backward overwrites dx (no
// parameters, nothing to accumulate).
import { dptError, fmtShape } from '../errors.js';
import type { ActivationSpec } from '../model/spec.js';
import { sizeOf, Workspace, type Layer, checkForwardInput } from './layer.js';
import { vector } from '../tensor/vector.js';

export type ActivationKind = ActivationSpec['type'];

// ---------------------------------------------------------------- relu

/** y = x > 0 ? x : 0 with the active vector kernels (TypeScript or WebAssembly SIMD: the same bits). */
export function reluForward(y: Float32Array, x: Float32Array, N: number): void {
  vector().reluForward(y, x, N);
}

/** NOTE: y > 0 exactly when x > 0, so relu'(0) = 0 (the fixtures' kink rule). */
export function reluBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, N: number): void {
  vector().reluBackward(dx, dy, y, N);
}

// ---------------------------------------------------------------- sigmoid

export function sigmoidForward(y: Float32Array, x: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) {
    const v = x[i];
    // NOTE: exp of a positive argument is never taken, so x = -1000 gives
    // exp(-1000) = 0 and y = 0 rather than 1 / (1 + Infinity) by luck.
    if (v >= 0) {
      y[i] = 1 / (1 + Math.exp(-v));
    } else {
      const e = Math.exp(v);
      y[i] = e / (1 + e);
    }
  }
}

/** sigma'(x) = y (1 - y). */
export function sigmoidBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) dx[i] = dy[i] * y[i] * (1 - y[i]);
}

// ---------------------------------------------------------------- tanh

export function tanhForward(y: Float32Array, x: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) y[i] = Math.tanh(x[i]);
}

/** tanh'(x) = 1 - y^2. */
export function tanhBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, N: number): void {
  for (let i = 0; i < N; i++) dx[i] = dy[i] * (1 - y[i] * y[i]);
}

// ---------------------------------------------------------------- softmax

/** y (R, C) = softmax of each row of x (R, C). */
export function softmaxForward(y: Float32Array, x: Float32Array, R: number, C: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * C;
    // NOTE: subtracting the row max keeps exp() in (0, 1]: rows of +-1000
    // would overflow to Infinity (or underflow to 0/0) without it.
    let m = -Infinity;
    for (let c = 0; c < C; c++) if (x[o + c] > m) m = x[o + c];
    let sum = 0; // float64
    for (let c = 0; c < C; c++) {
      const e = Math.exp(x[o + c] - m);
      y[o + c] = e;
      sum += e;
    }
    for (let c = 0; c < C; c++) y[o + c] = y[o + c] / sum;
  }
}

/** dx = y * (dy - sum_c dy_c y_c), per row. */
export function softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, R: number, C: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let s = 0;
    for (let c = 0; c < C; c++) s += dy[o + c] * y[o + c];
    for (let c = 0; c < C; c++) dx[o + c] = y[o + c] * (dy[o + c] - s);
  }
}

// ---------------------------------------------------------------- log_softmax

/** y (R, C) = x - max - log(sum exp(x - max)), per row. */
export function logSoftmaxForward(y: Float32Array, x: Float32Array, R: number, C: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) if (x[o + c] > m) m = x[o + c];
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(x[o + c] - m);
    const logSum = Math.log(sum);
    // NOTE: (x - m) - logSum, not x - (m + logSum): the row max then gives
    // -logSum (e.g. -9.35e-14) instead of a difference of two large numbers.
    for (let c = 0; c < C; c++) y[o + c] = (x[o + c] - m) - logSum;
  }
}

/** dx = dy - softmax(x) * sum_c dy_c, with softmax(x) = exp(y). */
export function logSoftmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, R: number, C: number): void {
  for (let r = 0; r < R; r++) {
    const o = r * C;
    let s = 0;
    for (let c = 0; c < C; c++) s += dy[o + c];
    for (let c = 0; c < C; c++) dx[o + c] = dy[o + c] - Math.exp(y[o + c]) * s;
  }
}

// ---------------------------------------------------------------- table

export interface ActivationOp {
  forward(y: Float32Array, x: Float32Array, R: number, C: number): void;
  backward(dx: Float32Array, dy: Float32Array, y: Float32Array, R: number, C: number): void;
}

/** Every op by its fixture name, all over (R, C); the elementwise ones use N = R * C. */
export const activationOps: Readonly<Record<ActivationKind | 'log_softmax', ActivationOp>> = {
  relu: { forward: (y, x, R, C) => reluForward(y, x, R * C), backward: (dx, dy, y, R, C) => reluBackward(dx, dy, y, R * C) },
  sigmoid: { forward: (y, x, R, C) => sigmoidForward(y, x, R * C), backward: (dx, dy, y, R, C) => sigmoidBackward(dx, dy, y, R * C) },
  tanh: { forward: (y, x, R, C) => tanhForward(y, x, R * C), backward: (dx, dy, y, R, C) => tanhBackward(dx, dy, y, R * C) },
  softmax: { forward: softmaxForward, backward: softmaxBackward },
  log_softmax: { forward: logSoftmaxForward, backward: logSoftmaxBackward },
};

// ---------------------------------------------------------------- layer

export function createActivation(index: number, inShape: readonly number[], kind: ActivationKind): Layer {
  const where = `layers[${index}] (${kind})`;
  const op = activationOps[kind];
  if (op === undefined) throw dptError('DPT_ERR_MODEL_SPEC', `${where}: unknown activation '${String(kind)}'`);
  if (inShape.length < 1) {
    throw dptError('DPT_ERR_SHAPE', `${where}: expected an input of rank >= 1, got ${fmtShape(inShape)}`);
  }
  if (inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: input dims must be positive integers, got ${fmtShape(inShape)}`);
  }
  const size = sizeOf(inShape);
  const C = inShape[inShape.length - 1]; // softmax axis; irrelevant to the elementwise ops
  const perSample = size / C;            // rows per sample
  const y = new Workspace();   // (B * size) the output, also what backward needs
  const dx = new Workspace();  // (B * size)
  let out = y.get(0);
  let n = 0;                   // elements of the last forward

  return {
    type: kind,
    index,
    inShape: [...inShape],
    outShape: [...inShape],
    params: [],
    stats: [],
    bind() {},
    forward(x, batch) {
      n = batch * size;
      checkForwardInput(where, x, n, batch, inShape);
      out = y.get(n);
      op.forward(out, x, batch * perSample, C);
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch * size !== n || dy.length < n) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${n} floats)`);
      }
      if (!needDx) return null;
      const din = dx.get(n);
      op.backward(din, dy, out, batch * perSample, C);
      return din;
    },
  };
}
