// GRU layer over batch-first sequences, fused the same way as the LSTM
// (lstm.ts): one gemm for the input projection of all timesteps, one gemm per
// timestep for the recurrence, a fused elementwise cell loop, and
// backpropagation through time ending in big gemms over all timesteps.
//
// Dimension letters:
//   B  batch (samples), T  timesteps, F  input features, H  hidden units,
//   G = 3H  the three gates side by side, in PyTorch's order
//      r (reset), z (update), n (new / candidate).
//
// Equations (PyTorch; Keras reset_after=True), with h_{-1} = h0 (zero in the layer):
//   a_t = x_t W_ih + b_ih                 zh_t = h_{t-1} W_hh + b_hh      (B, 3H)
//   r = sigmoid(a_r + zh_r)   z = sigmoid(a_z + zh_z)
//   n = tanh(a_n + r * zh_n)             NOTE: r multiplies b_hn too
//   h_t = (1 - z) * n + z * h_{t-1}
// The layer outputs h_t for every t, (B, T, H), when returnSequences, else
// the last state h_{T-1}, (B, H).
//
// Parameters, stored in this order in the flat buffer:
//   W_ih (F, 3H)  the transpose of PyTorch's weight_ih (3H, F)
//   W_hh (H, 3H)  the transpose of PyTorch's weight_hh (3H, H)
//   b_ih (3H), b_hh (3H)  PyTorch's two biases (they cannot be merged for n)
// Glorot fans follow Keras: fanIn = rows, fanOut = columns of the stored matrix.
//
// Layout: as in lstm.ts, x and every whole-sequence cache are batch-major
// (row (b, t) at b*T + t), so the input projection, dW_ih, dW_hh and dx are
// single gemms whose row sums run in batch-major order (a batch split in two
// calls gives the same bits); the per-step products use one-slot time-major
// (B, ...) scratch buffers (h, zh, dGt, dh).
import { dptError, fmtShape } from '../errors.js';
import type { RecurrentSpec } from '../model/spec.js';
import { cells } from '../tensor/cells.js';
import { gemm } from '../tensor/kernels.js';
import { checkBind, checkForwardInput, Workspace, type Layer } from './layer.js';
import { inPlace, recurrentParams, sequenceShape, transposeInto } from './recurrent.js';

const EMPTY: Float32Array = new Float32Array(0);

/** Forward caches and scratch of one GRU, reused from call to call. */
export class GruState {
  B = 0; T = 0; F = 0; H = 0;
  private readonly ws = {
    act: new Workspace(), hn: new Workspace(), hPrev: new Workspace(), h: new Workspace(),
    zh: new Workspace(), dGx: new Workspace(), dGh: new Workspace(), dGt: new Workspace(),
    dh: new Workspace(), bih: new Workspace(), bhh: new Workspace(), dy: new Workspace(),
    whhF: new Workspace(), whhB: new Workspace(),
  };
  // Kept by forward for backward:
  act = EMPTY;   // (B, T, 3H) x_t W_ih, then overwritten by the activated gates r z n
  hn = EMPTY;    // (B, T, H) h_{t-1} W_hn + b_hn, the term r multiplies
  hPrev = EMPTY; // (B, T, H) h_{t-1} at slot t (slot 0 is h0)
  h = EMPTY;     // (B, H) the running hidden state; h_{T-1} = h_n after forward
  zh = EMPTY;    // (B, 3H) h_{t-1} W_hh of the current step (without b_hh)
  // Backward scratch:
  dGx = EMPTY;   // (B, T, 3H) dLoss/d(a_t): the pre-activations of the input side
  dGh = EMPTY;   // (B, T, 3H) dLoss/d(zh_t): the same except the n part is times r
  dGt = EMPTY;   // (B, 3H) dGh of the current step (contiguous for the gemm)
  dh = EMPTY;    // (B, H) dLoss/dh_{t-1} flowing back; dh0 at the end

  reserveForward(B: number, T: number, F: number, H: number): void {
    this.B = B; this.T = T; this.F = F; this.H = H;
    const G = 3 * H;
    this.act = this.ws.act.get(B * T * G);
    this.hn = this.ws.hn.get(B * T * H);
    this.hPrev = this.ws.hPrev.get(B * T * H);
    this.h = this.ws.h.get(B * H);
    this.zh = this.ws.zh.get(B * G);
  }

  reserveBackward(): void {
    const { B, T, H } = this;
    const G = 3 * H;
    this.dGx = this.ws.dGx.get(B * T * G);
    this.dGh = this.ws.dGh.get(B * T * G);
    this.dGt = this.ws.dGt.get(B * G);
    this.dh = this.ws.dh.get(B * H);
  }

  /** The biases b_ih, b_hh (3H), where the kernels use them in place (copies if they live elsewhere). */
  biasesInPlace(b_ih: Float32Array, b_hh: Float32Array): [Float32Array, Float32Array] {
    return [inPlace(b_ih, 3 * this.H, this.ws.bih), inPlace(b_hh, 3 * this.H, this.ws.bhh)];
  }

  /** dy (B, T, H), where the kernels use it in place (a copy if it lives elsewhere). */
  dyInPlace(dy: Float32Array): Float32Array {
    return inPlace(dy, this.B * this.T * this.H, this.ws.dy);
  }

  /** W_hh (H, 3H) prepared for the per-step products h W_hh (forward) or, with transB, dz W_hh^T (backward). */
  packWhh(W_hh: Float32Array, transB: boolean): Float32Array {
    const { H } = this;
    const G = 3 * H;
    const [n, k] = transB ? [H, G] : [G, H];
    const ck = cells();
    const packed = (transB ? this.ws.whhB : this.ws.whhF).get(ck.packedBLength(n, k));
    ck.packB(transB, n, k, W_hh, packed);
    return packed;
  }
}

/**
 * Runs the GRU over x (B, T, F) from h0 (B, H) (null: zeros). Writes h_t for
 * every t into y (B, T, H) unless y is null; afterwards s.h holds h_n (B, H).
 * Fills s with what backward needs.
 */
export function gruForward(
  s: GruState, y: Float32Array | null, x: Float32Array, h0: Float32Array | null,
  W_ih: Float32Array, W_hh: Float32Array, b_ih: Float32Array, b_hh: Float32Array,
  B: number, T: number, F: number, H: number,
): void {
  s.reserveForward(B, T, F, H);
  const { act, hn, hPrev, h, zh } = s;
  const G = 3 * H;

  // Input projection of all timesteps in one product: act (B*T, 3H) = x (B*T, F) W_ih (F, 3H).
  gemm(false, false, B * T, G, F, x, W_ih, act, false);
  for (let k = 0; k < B * H; k++) h[k] = h0 !== null ? h0[k] : 0;

  const ck = cells();
  const [bih, bhh] = s.biasesInPlace(b_ih, b_hh);
  // W_hh packed once for the T per-step products (bit-identical to gemm, see cells.ts).
  const whh = T > 1 || h0 !== null ? s.packWhh(W_hh, false) : null;
  for (let t = 0; t < T; t++) {
    // zh (B, 3H) = h_{t-1} (B, H) W_hh (H, 3H); skipped while h is known to be zero.
    if (t === 0 && h0 === null) zh.fill(0);
    else ck.gemmPackedB(B, G, H, h, false, W_hh, whh!, zh, false);
    // The gates, hn, h_t of every row (the fused cell, src/tensor/cells.ts).
    ck.gruForwardStep(B, T, H, t, act, zh, bih, bhh, hn, hPrev, h);
  }

  // y (B, T, H): h_t of every step. hPrev holds h_{t-1} at slot t, so slots
  // 1..T-1 of a row are h_0..h_{T-2}; h_{T-1} is the final h.
  if (y !== null) {
    for (let bi = 0; bi < B; bi++) {
      const r = bi * T * H;
      y.set(hPrev.subarray(r + H, r + T * H), r);
      y.set(h.subarray(bi * H, (bi + 1) * H), r + (T - 1) * H);
    }
  }
}

/**
 * Backward of the latest gruForward on s. Upstream: dy (B, T, H) on every
 * h_t (null: none) and dhT (B, H) on h_n (null: none). ACCUMULATES into
 * dW_ih (F, 3H), dW_hh (H, 3H), db_ih, db_hh (3H). Overwrites dx (B, T, F)
 * and dh0 (B, H) when they are not null.
 */
export function gruBackward(
  s: GruState, dx: Float32Array | null, dh0: Float32Array | null,
  dW_ih: Float32Array, dW_hh: Float32Array, db_ih: Float32Array, db_hh: Float32Array,
  dy: Float32Array | null, dhT: Float32Array | null,
  x: Float32Array, W_ih: Float32Array, W_hh: Float32Array,
): void {
  s.reserveBackward();
  const { B, T, F, H, act, hn, hPrev, dGx, dGh, dGt, dh } = s;
  const G = 3 * H;

  for (let k = 0; k < B * H; k++) dh[k] = dhT !== null ? dhT[k] : 0;

  const ck = cells();
  const dyIn = dy !== null ? s.dyInPlace(dy) : null;
  const whhT = T > 1 || dh0 !== null ? s.packWhh(W_hh, true) : null; // for dz_t W_hh^T
  for (let t = T - 1; t >= 0; t--) {
    // dLoss/d(a_t), dLoss/d(zh_t) of every row, and dh_{t-1}'s direct path (the fused cell, src/tensor/cells.ts).
    ck.gruBackwardStep(B, T, H, t, act, hn, hPrev, dyIn, dh, dGx, dGh, dGt);
    // dh_{t-1} (B, H) += dGh_t (B, 3H) W_hh^T; W_hh is stored (H, 3H) = (N, K), hence transB.
    // The layer starts from h0 = 0 and needs no dh0: the last product is skipped.
    if (t > 0 || dh0 !== null) ck.gemmPackedB(B, H, G, dGt, true, W_hh, whhT!, dh, true);
  }

  // The weight gradients of all timesteps at once (x and hPrev are stored (B*T, .) = (K, M)).
  gemm(true, false, F, G, B * T, x, dGx, dW_ih, true);
  gemm(true, false, H, G, B * T, hPrev, dGh, dW_hh, true);
  ck.addRowSums(db_ih, dGx, B * T, G);
  ck.addRowSums(db_hh, dGh, B * T, G);
  // dx (B*T, F) = dGx (B*T, 3H) W_ih^T; W_ih is stored (F, 3H) = (N, K), hence transB.
  if (dx !== null) gemm(false, true, B * T, F, G, dGx, W_ih, dx, false);
  if (dh0 !== null) dh0.set(dh);
}

/** PyTorch-layout tensors of one GRU call (the fields of gru.json), all float32. */
export interface GruTorchInput {
  B: number; T: number; F: number; H: number;
  x: Float32Array;          // (B, T, F)
  h0: Float32Array | null;  // (B, H)
  weight_ih: Float32Array;  // (3H, F)
  weight_hh: Float32Array;  // (3H, H)
  bias_ih: Float32Array;    // (3H)
  bias_hh: Float32Array;    // (3H)
  G_output: Float32Array | null; // (B, T, H) upstream on output
  G_h_n: Float32Array | null;    // (B, H) upstream on h_n
}

export interface GruTorchResult {
  output: Float32Array; h_n: Float32Array;
  gate_r_t0: Float32Array; gate_z_t0: Float32Array; gate_n_t0: Float32Array;
  /** d(sum(output * G_output) + sum(h_n * G_h_n)), in PyTorch layout. */
  grads: {
    x: Float32Array; h0: Float32Array;
    weight_ih: Float32Array; weight_hh: Float32Array; bias_ih: Float32Array; bias_hh: Float32Array;
  };
}

/**
 * Forward and backward of one GRU call in PyTorch's layout, for the
 * conformance runner and the tests. Allocates; not for the training loop.
 */
export function gruTorch(a: GruTorchInput): GruTorchResult {
  const { B, T, F, H } = a;
  const G = 3 * H;
  const W_ih = transposeInto(new Float32Array(F * G), a.weight_ih, G, F);
  const W_hh = transposeInto(new Float32Array(H * G), a.weight_hh, G, H);

  const s = new GruState();
  const output = new Float32Array(B * T * H);
  gruForward(s, output, a.x, a.h0, W_ih, W_hh, a.bias_ih, a.bias_hh, B, T, F, H);
  const gates = [0, 1, 2].map((k) => {
    const out = new Float32Array(B * H);
    for (let bi = 0; bi < B; bi++) out.set(s.act.subarray(bi * T * G + k * H, bi * T * G + (k + 1) * H), bi * H);
    return out;
  });
  const h_n = s.h.slice();

  const dW_ih = new Float32Array(F * G), dW_hh = new Float32Array(H * G);
  const db_ih = new Float32Array(G), db_hh = new Float32Array(G);
  const dx = new Float32Array(B * T * F), dh0 = new Float32Array(B * H);
  gruBackward(s, dx, dh0, dW_ih, dW_hh, db_ih, db_hh, a.G_output, a.G_h_n, a.x, W_ih, W_hh);
  return {
    output, h_n,
    gate_r_t0: gates[0], gate_z_t0: gates[1], gate_n_t0: gates[2],
    grads: {
      x: dx, h0: dh0,
      weight_ih: transposeInto(new Float32Array(G * F), dW_ih, F, G),
      weight_hh: transposeInto(new Float32Array(G * H), dW_hh, H, G),
      bias_ih: db_ih, bias_hh: db_hh,
    },
  };
}

export function createGru(index: number, inShape: readonly number[], spec: RecurrentSpec): Layer {
  const where = `layers[${index}] (gru)`;
  if (spec.type !== 'gru') {
    throw dptError('DPT_ERR_MODEL_SPEC', `${where}: createGru got a spec of type '${spec.type}'`);
  }
  const [T, F] = sequenceShape(where, inShape);
  const H = spec.units;
  const G = 3 * H;
  const returnSequences = spec.returnSequences === true;
  const outShape = returnSequences ? [T, H] : [H];
  const kernelInit = spec.kernelInit ?? 'glorot_uniform';
  const params = recurrentParams(F, H, G, kernelInit);

  let W_ih = EMPTY, W_hh = EMPTY, b_ih = EMPTY, b_hh = EMPTY;  // (F, 3H), (H, 3H), (3H), (3H)
  let dW_ih = EMPTY, dW_hh = EMPTY, db_ih = EMPTY, db_hh = EMPTY;
  let x = EMPTY;                                   // (B, T, F) the input, kept for backward
  let lastBatch = -1;                              // B of the last forward
  const s = new GruState();
  const y = new Workspace();                       // (B, T, H) when returnSequences
  const dx = new Workspace();                      // (B, T, F)

  return {
    type: 'gru',
    index,
    inShape: [...inShape],
    outShape,
    params,
    stats: [],
    bind(p, g) {
      checkBind(where, params, p, g);
      [W_ih, W_hh, b_ih, b_hh] = p;
      [dW_ih, dW_hh, db_ih, db_hh] = g;
    },
    forward(input, batch) {
      checkForwardInput(where, input, batch * T * F, batch, inShape);
      x = input;
      lastBatch = batch;
      const out = returnSequences ? y.get(batch * T * H) : null;
      gruForward(s, out, x, null, W_ih, W_hh, b_ih, b_hh, batch, T, F, H);
      return out ?? s.h;
    },
    backward(dout, batch, needDx) {
      const n = batch * (returnSequences ? T * H : H);
      if (batch !== lastBatch || dout.length < n) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dout.length} floats does not match the last forward (batch ${lastBatch} of ${fmtShape(outShape)})`);
      }
      const din = needDx ? dx.get(batch * T * F) : null;
      gruBackward(s, din, null, dW_ih, dW_hh, db_ih, db_hh,
        returnSequences ? dout : null, returnSequences ? null : dout, x, W_ih, W_hh);
      return din;
    },
  };
}
