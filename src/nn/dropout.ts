// Inverted dropout (PyTorch nn.Dropout(p), Keras Dropout(rate)): in training
// each element is dropped with probability p and the kept ones are scaled by
// 1/(1-p), so E[y] = x; in evaluation the layer is the identity.
//
// Dimension letters: B samples in the buffer, E elements per sample
// (the product of the per-sample shape, e.g. T * F for a sequence).
//
// The mask is not drawn from a stream but computed from a key (docs/design.md
// principle 4): element e of global row g at step s of layer l is dropped
// when uniform(seed, s, g, l, e) < p. The same sample at the same step thus
// gets the same mask whichever micro-shard, worker or call it falls in.
import { dptError, fmtShape } from '../errors.js';
import type { DropoutSpec } from '../model/spec.js';
import { uniform } from '../random/counter.js';
import { sizeOf, Workspace, type Layer, checkForwardInput } from './layer.js';

/**
 * mask (B, E) = 1 where the element is kept, 0 where dropped, for rows
 * rowOffset .. rowOffset + B - 1 of the global batch.
 */
export function dropoutMask(
  mask: Float32Array, p: number, seed: number, step: number, rowOffset: number, layer: number,
  B: number, E: number,
): void {
  for (let r = 0; r < B; r++) {
    const row = rowOffset + r;
    const o = r * E;
    for (let e = 0; e < E; e++) mask[o + e] = uniform(seed, step, row, layer, e) < p ? 0 : 1;
  }
}

/**
 * y = x * mask / (1 - p).
 * NOTE: p = 1 drops everything (uniform() < 1 always), so mask is all zero
 * and y = 0; the division is never reached, no 0/0 = NaN. Dividing (not
 * multiplying by a precomputed 1/(1-p)) makes kept values exactly x/(1-p).
 */
export function dropoutForward(y: Float32Array, x: Float32Array, mask: Float32Array, p: number, N: number): void {
  const keep = 1 - p;
  for (let i = 0; i < N; i++) y[i] = mask[i] !== 0 ? x[i] / keep : 0;
}

/** dx = dy * mask / (1 - p), the same mask as the forward pass. */
export function dropoutBackward(dx: Float32Array, dy: Float32Array, mask: Float32Array, p: number, N: number): void {
  const keep = 1 - p;
  for (let i = 0; i < N; i++) dx[i] = mask[i] !== 0 ? dy[i] / keep : 0;
}

export function createDropout(index: number, inShape: readonly number[], spec: DropoutSpec): Layer {
  const where = `layers[${index}] (dropout)`;
  if (inShape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw dptError('DPT_ERR_SHAPE', `${where}: input dims must be positive integers, got ${fmtShape(inShape)}`);
  }
  const p = spec.rate;
  if (!(p >= 0 && p <= 1)) throw dptError('DPT_ERR_MODEL_SPEC', `${where}: rate must be in [0, 1], got ${p}`);
  const E = sizeOf(inShape);
  const mask = new Workspace(); // (B, E) 1 kept / 0 dropped
  const y = new Workspace();    // (B, E)
  const dx = new Workspace();   // (B, E)
  let m = mask.get(0);
  let n = 0;                    // elements of the last forward
  // What the last forward did: backward must mirror it.
  let mode: 'identity' | 'masked' = 'identity';

  return {
    type: 'dropout',
    index,
    inShape: [...inShape],
    outShape: [...inShape],
    params: [],
    stats: [],
    bind() {},
    forward(x, batch, ctx) {
      n = batch * E;
      checkForwardInput(where, x, n, batch, inShape);
      // Eval mode and p = 0 are the identity: hand the input through, no copy.
      if (!ctx.training || p === 0) {
        mode = 'identity';
        return x.length === n ? x : x.subarray(0, n);
      }
      mode = 'masked';
      m = mask.get(n);
      dropoutMask(m, p, ctx.seed, ctx.step, ctx.rowOffset, index, batch, E);
      const out = y.get(n);
      dropoutForward(out, x, m, p, n);
      return out;
    },
    backward(dy, batch, needDx) {
      if (batch * E !== n || dy.length < n) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dy.length} floats does not match the last forward (${n} floats)`);
      }
      if (!needDx) return null;
      if (mode === 'identity') return dy.length === n ? dy : dy.subarray(0, n);
      const din = dx.get(n);
      dropoutBackward(din, dy, m, p, n);
      return din;
    },
  };
}
