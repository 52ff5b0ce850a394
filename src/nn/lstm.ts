// LSTM layer over batch-first sequences, fused: one gemm for the input
// projection of all timesteps, one gemm per timestep for the recurrence, a
// fused elementwise cell loop, and backpropagation through time that ends in
// big gemms over all timesteps at once.
//
// Dimension letters:
//   B  batch (samples), T  timesteps, F  input features, H  hidden units,
//   G = 4H  the four gate pre-activations side by side, in PyTorch's order
//      i (input), f (forget), g (cell candidate), o (output).
//
// Equations, for t = 0..T-1 with h_{-1} = h0 and c_{-1} = c0 (zero in the layer):
//   z_t = x_t W_ih + h_{t-1} W_hh + b                 (B, 4H)
//   i = sigmoid(z_i)  f = sigmoid(z_f)  g = tanh(z_g)  o = sigmoid(z_o)
//   c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(c_t)
// The layer outputs h_t for every t, (B, T, H), when returnSequences, else the
// last state h_{T-1}, (B, H).
//
// Parameters, stored in this order in the flat buffer:
//   W_ih (F, 4H)  input-major: the transpose of PyTorch's weight_ih (4H, F),
//                 the same as a Keras kernel, so x_t W_ih is a plain product
//   W_hh (H, 4H)  the transpose of PyTorch's weight_hh (4H, H)
//   b_ih (4H), b_hh (4H)  PyTorch's two biases. They always act as a sum,
//                 b = b_ih + b_hh, and get the same gradient; both are kept
//                 because SGD on two biases moves their sum twice as far as on
//                 one, so PyTorch's trajectories need both (sgd_rnn.json).
// Glorot fans follow Keras: fanIn = rows, fanOut = columns of the stored
// matrix (F and 4H for W_ih, H and 4H for W_hh).
//
// Layout: the input x and every whole-sequence cache are BATCH-major,
// row (b, t) at b*T + t, like x itself. So the input projection, dW_ih,
// dW_hh and dx are single gemms on x and dx in place, and their sums over
// rows run in batch-major order: gradients summed over rows [0, B1) and then
// [B1, B) in two calls come out bit-identical to one call over [0, B). Only
// the per-step products need the rows of ONE timestep contiguous; they use
// small (B, ...) scratch buffers, a one-slot time-major layout (h, zh, dGt,
// dh), which the cell loops fill alongside the batch-major caches.
import { dptError, fmtShape } from '../errors.js';
import type { RecurrentSpec } from '../model/spec.js';
import { cells } from '../tensor/cells.js';
import { gemm } from '../tensor/kernels.js';
import { checkBind, checkForwardInput, Workspace, type Layer } from './layer.js';
import { inPlace, recurrentParams, sequenceShape, transposeInto } from './recurrent.js';

const EMPTY: Float32Array = new Float32Array(0);

/** Forward caches and scratch of one LSTM, reused from call to call. */
export class LstmState {
  B = 0; T = 0; F = 0; H = 0;
  private readonly ws = {
    act: new Workspace(), c: new Workspace(), tc: new Workspace(), hPrev: new Workspace(),
    h: new Workspace(), zh: new Workspace(), dG: new Workspace(), dGt: new Workspace(),
    dh: new Workspace(), dc: new Workspace(), bias: new Workspace(), dy: new Workspace(),
    whhF: new Workspace(), whhB: new Workspace(),
  };
  // Kept by forward for backward:
  act = EMPTY;   // (B, T, 4H) x_t W_ih, then overwritten by the activated gates i f g o
  c = EMPTY;     // (B, T+1, H) cell states: slot 0 is c0, slot t+1 is c_t
  tc = EMPTY;    // (B, T, H) tanh(c_t)
  hPrev = EMPTY; // (B, T, H) h_{t-1} at slot t (slot 0 is h0): the A of dW_hh
  h = EMPTY;     // (B, H) the running hidden state; h_{T-1} = h_n after forward
  zh = EMPTY;    // (B, 4H) h_{t-1} W_hh of the current step
  // Backward scratch:
  dG = EMPTY;    // (B, T, 4H) dLoss/dz_t for every step
  dGt = EMPTY;   // (B, 4H) dLoss/dz_t of the current step (contiguous for the gemm)
  dh = EMPTY;    // (B, H) dLoss/dh_{t-1} flowing back; dh0 at the end
  dc = EMPTY;    // (B, H) dLoss/dc_{t-1} flowing back; dc0 at the end

  reserveForward(B: number, T: number, F: number, H: number): void {
    this.B = B; this.T = T; this.F = F; this.H = H;
    const G = 4 * H;
    this.act = this.ws.act.get(B * T * G);
    this.c = this.ws.c.get(B * (T + 1) * H);
    this.tc = this.ws.tc.get(B * T * H);
    this.hPrev = this.ws.hPrev.get(B * T * H);
    this.h = this.ws.h.get(B * H);
    this.zh = this.ws.zh.get(B * G);
  }

  reserveBackward(): void {
    const { B, T, H } = this;
    const G = 4 * H;
    this.dG = this.ws.dG.get(B * T * G);
    this.dGt = this.ws.dGt.get(B * G);
    this.dh = this.ws.dh.get(B * H);
    this.dc = this.ws.dc.get(B * H);
  }

  /** bias (4H), where the kernels use it in place (a copy if it lives elsewhere). */
  biasInPlace(b: Float32Array): Float32Array {
    return inPlace(b, 4 * this.H, this.ws.bias);
  }

  /** dy (B, T, H), where the kernels use it in place (a copy if it lives elsewhere). */
  dyInPlace(dy: Float32Array): Float32Array {
    return inPlace(dy, this.B * this.T * this.H, this.ws.dy);
  }

  /** W_hh (H, 4H) prepared for the per-step products h W_hh (forward) or, with transB, dz W_hh^T (backward). */
  packWhh(W_hh: Float32Array, transB: boolean): Float32Array {
    const { H } = this;
    const G = 4 * H;
    const [n, k] = transB ? [H, G] : [G, H];
    const ck = cells();
    const packed = (transB ? this.ws.whhB : this.ws.whhF).get(ck.packedBLength(n, k));
    ck.packB(transB, n, k, W_hh, packed);
    return packed;
  }
}

/**
 * Runs the LSTM over x (B, T, F) from h0, c0 (B, H) (null: zeros). Writes
 * h_t for every t into y (B, T, H) unless y is null; afterwards s.h holds
 * h_n (B, H) and lstmCellState() reads c_n. Fills s with what backward needs.
 */
export function lstmForward(
  s: LstmState, y: Float32Array | null,
  x: Float32Array, h0: Float32Array | null, c0: Float32Array | null,
  W_ih: Float32Array, W_hh: Float32Array, b: Float32Array,
  B: number, T: number, F: number, H: number,
): void {
  s.reserveForward(B, T, F, H);
  const { act, c, tc, hPrev, h, zh } = s;
  const G = 4 * H;

  // Input projection of all timesteps in one product: act (B*T, 4H) = x (B*T, F) W_ih (F, 4H).
  gemm(false, false, B * T, G, F, x, W_ih, act, false);

  // Initial state: h (B, H) = h0, c slot 0 = c0.
  for (let bi = 0; bi < B; bi++) {
    const rc = bi * (T + 1) * H, rh = bi * H;
    for (let j = 0; j < H; j++) {
      c[rc + j] = c0 !== null ? c0[rh + j] : 0;
      h[rh + j] = h0 !== null ? h0[rh + j] : 0;
    }
  }

  const ck = cells();
  const bias = s.biasInPlace(b);
  // W_hh packed once for the T per-step products (bit-identical to gemm, see cells.ts).
  const whh = T > 1 || h0 !== null ? s.packWhh(W_hh, false) : null;
  for (let t = 0; t < T; t++) {
    // zh (B, 4H) = h_{t-1} (B, H) W_hh (H, 4H); skipped while h is known to be zero.
    if (t === 0 && h0 === null) zh.fill(0);
    else ck.gemmPackedB(B, G, H, h, false, W_hh, whh!, zh, false);
    // The gates, c_t, tanh(c_t), h_t of every row (the fused cell, src/tensor/cells.ts).
    ck.lstmForwardStep(B, T, H, t, act, zh, bias, c, tc, hPrev, h);
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

/** c_n (B, H): the cell state after the last step of the latest lstmForward. */
export function lstmCellState(s: LstmState, out: Float32Array): Float32Array {
  const { B, T, H } = s;
  for (let bi = 0; bi < B; bi++) {
    const rc = (bi * (T + 1) + T) * H;
    for (let j = 0; j < H; j++) out[bi * H + j] = s.c[rc + j];
  }
  return out;
}

/**
 * Backward of the latest lstmForward on s. Upstream: dy (B, T, H) on every
 * h_t (null: none) and dhT (B, H) on h_n (null: none); there is none on c_n.
 * ACCUMULATES into dW_ih (F, 4H), dW_hh (H, 4H), db (4H) and, when given,
 * db2 (4H) (the second of PyTorch's two biases gets the same sums). Overwrites dx
 * (B, T, F), dh0 and dc0 (B, H) when they are not null.
 */
export function lstmBackward(
  s: LstmState,
  dx: Float32Array | null, dh0: Float32Array | null, dc0: Float32Array | null,
  dW_ih: Float32Array, dW_hh: Float32Array, db: Float32Array,
  dy: Float32Array | null, dhT: Float32Array | null,
  x: Float32Array, W_ih: Float32Array, W_hh: Float32Array, db2: Float32Array | null = null,
): void {
  s.reserveBackward();
  const { B, T, F, H, act, c, tc, hPrev, dG, dGt, dh, dc } = s;
  const G = 4 * H;

  for (let k = 0; k < B * H; k++) {
    dh[k] = dhT !== null ? dhT[k] : 0;
    dc[k] = 0;
  }

  const ck = cells();
  const dyIn = dy !== null ? s.dyInPlace(dy) : null;
  const whhT = T > 1 || dh0 !== null ? s.packWhh(W_hh, true) : null; // for dz_t W_hh^T
  for (let t = T - 1; t >= 0; t--) {
    // dz_t of every row into dG and dGt, dc_{t-1} into dc (the fused cell, src/tensor/cells.ts).
    ck.lstmBackwardStep(B, T, H, t, act, c, tc, dyIn, dh, dc, dG, dGt);
    // dh_{t-1} (B, H) = dz_t (B, 4H) W_hh^T; W_hh is stored (H, 4H) = (N, K), hence transB.
    // The layer starts from h0 = 0 and needs no dh0: the last product is skipped.
    if (t > 0 || dh0 !== null) ck.gemmPackedB(B, H, G, dGt, true, W_hh, whhT!, dh, false);
  }

  // The weight gradients of all timesteps at once (x and hPrev are stored (B*T, .) = (K, M)):
  // dW_ih (F, 4H) += x^T dG,  dW_hh (H, 4H) += hPrev^T dG,  db += sum over rows of dG.
  gemm(true, false, F, G, B * T, x, dG, dW_ih, true);
  gemm(true, false, H, G, B * T, hPrev, dG, dW_hh, true);
  ck.addRowSums(db, dG, B * T, G);
  // NOTE: accumulate straight into each bias gradient: adding a per-call
  // sum instead would round differently when a batch is split across calls.
  if (db2 !== null) ck.addRowSums(db2, dG, B * T, G);
  // dx (B*T, F) = dG (B*T, 4H) W_ih^T; W_ih is stored (F, 4H) = (N, K), hence transB.
  if (dx !== null) gemm(false, true, B * T, F, G, dG, W_ih, dx, false);
  if (dh0 !== null) dh0.set(dh);
  if (dc0 !== null) dc0.set(dc);
}

/** PyTorch-layout tensors of one LSTM call (the fields of lstm.json), all float32. */
export interface LstmTorchInput {
  B: number; T: number; F: number; H: number;
  x: Float32Array;          // (B, T, F)
  h0: Float32Array | null;  // (B, H)
  c0: Float32Array | null;  // (B, H)
  weight_ih: Float32Array;  // (4H, F)
  weight_hh: Float32Array;  // (4H, H)
  bias_ih: Float32Array;    // (4H)
  bias_hh: Float32Array;    // (4H)
  G_output: Float32Array | null; // (B, T, H) upstream on output
  G_h_n: Float32Array | null;    // (B, H) upstream on h_n
}

export interface LstmTorchResult {
  output: Float32Array; h_n: Float32Array; c_n: Float32Array;
  gate_i_t0: Float32Array; gate_f_t0: Float32Array; gate_g_t0: Float32Array; gate_o_t0: Float32Array;
  /** d(sum(output * G_output) + sum(h_n * G_h_n)), in PyTorch layout. */
  grads: {
    x: Float32Array; h0: Float32Array; c0: Float32Array;
    weight_ih: Float32Array; weight_hh: Float32Array; bias_ih: Float32Array; bias_hh: Float32Array;
  };
}

/**
 * Forward and backward of one LSTM call in PyTorch's layout, for the
 * conformance runner and the tests: converts the weights, runs lstmForward
 * and lstmBackward, and converts the gradients back. Allocates; not for the
 * training loop.
 */
export function lstmTorch(a: LstmTorchInput): LstmTorchResult {
  const { B, T, F, H } = a;
  const G = 4 * H;
  const W_ih = transposeInto(new Float32Array(F * G), a.weight_ih, G, F);
  const W_hh = transposeInto(new Float32Array(H * G), a.weight_hh, G, H);
  const b = new Float32Array(G);
  for (let j = 0; j < G; j++) b[j] = a.bias_ih[j] + a.bias_hh[j];

  const s = new LstmState();
  const output = new Float32Array(B * T * H);
  lstmForward(s, output, a.x, a.h0, a.c0, W_ih, W_hh, b, B, T, F, H);
  const gates = [0, 1, 2, 3].map((k) => {
    const out = new Float32Array(B * H);
    for (let bi = 0; bi < B; bi++) out.set(s.act.subarray(bi * T * G + k * H, bi * T * G + (k + 1) * H), bi * H);
    return out;
  });
  const h_n = s.h.slice();
  const c_n = lstmCellState(s, new Float32Array(B * H));

  const dW_ih = new Float32Array(F * G), dW_hh = new Float32Array(H * G), db = new Float32Array(G);
  const dx = new Float32Array(B * T * F), dh0 = new Float32Array(B * H), dc0 = new Float32Array(B * H);
  lstmBackward(s, dx, dh0, dc0, dW_ih, dW_hh, db, a.G_output, a.G_h_n, a.x, W_ih, W_hh);
  return {
    output, h_n, c_n,
    gate_i_t0: gates[0], gate_f_t0: gates[1], gate_g_t0: gates[2], gate_o_t0: gates[3],
    grads: {
      x: dx, h0: dh0, c0: dc0,
      weight_ih: transposeInto(new Float32Array(G * F), dW_ih, F, G),
      weight_hh: transposeInto(new Float32Array(G * H), dW_hh, H, G),
      bias_ih: db, bias_hh: db.slice(),
    },
  };
}

export function createLstm(index: number, inShape: readonly number[], spec: RecurrentSpec): Layer {
  const where = `layers[${index}] (lstm)`;
  if (spec.type !== 'lstm') {
    throw dptError('DPT_ERR_MODEL_SPEC', `${where}: createLstm got a spec of type '${spec.type}'`);
  }
  const [T, F] = sequenceShape(where, inShape);
  const H = spec.units;
  const G = 4 * H;
  const returnSequences = spec.returnSequences === true;
  const outShape = returnSequences ? [T, H] : [H];
  const kernelInit = spec.kernelInit ?? 'glorot_uniform';
  const params = recurrentParams(F, H, G, kernelInit);

  let W_ih = EMPTY, W_hh = EMPTY, b_ih = EMPTY, b_hh = EMPTY; // (F, 4H), (H, 4H), (4H), (4H)
  let dW_ih = EMPTY, dW_hh = EMPTY, db_ih = EMPTY, db_hh = EMPTY;
  const bSpace = new Workspace();                  // (4H) b_ih + b_hh of the last forward
  let x = EMPTY;                                   // (B, T, F) the input, kept for backward
  let lastBatch = -1;                              // B of the last forward
  const s = new LstmState();
  const y = new Workspace();                       // (B, T, H) when returnSequences
  const dx = new Workspace();                      // (B, T, F)

  return {
    type: 'lstm',
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
      const b = bSpace.get(G);
      for (let j = 0; j < G; j++) b[j] = b_ih[j] + b_hh[j];
      const out = returnSequences ? y.get(batch * T * H) : null;
      lstmForward(s, out, x, null, null, W_ih, W_hh, b, batch, T, F, H);
      return out ?? s.h;
    },
    backward(dout, batch, needDx) {
      const n = batch * (returnSequences ? T * H : H);
      if (batch !== lastBatch || dout.length < n) {
        throw dptError('DPT_ERR_SHAPE', `${where}: backward for batch ${batch} with ${dout.length} floats does not match the last forward (batch ${lastBatch} of ${fmtShape(outShape)})`);
      }
      const din = needDx ? dx.get(batch * T * F) : null;
      lstmBackward(s, din, null, null, dW_ih, dW_hh, db_ih,
        returnSequences ? dout : null, returnSequences ? null : dout, x, W_ih, W_hh, db_hh);
      return din;
    },
  };
}
