// The hot loops of the recurrent layers beyond a plain gemm, behind one
// small interface like the gemm of kernels.ts: the fused LSTM and GRU cells
// of one timestep (forward and backward), the row sums of the bias
// gradients, and products with a right operand packed once and reused at
// every timestep (W_hh).
// The pure-TypeScript implementation below is the reference; the
// WebAssembly SIMD one (wasm/cells.ts, through src/tensor/wasm-kernels.ts)
// is swapped in with setCellKernels() (useKernels() in setup.ts does it).
//
// Letters as in src/nn/lstm.ts and gru.ts: B batch, T timesteps, H hidden
// units. Whole-sequence buffers are batch-major (row (b, t) at b*T + t);
// per-step buffers (h, zh, dh, dc, dGt) are (B, .). A step writes only its
// own slot t of the whole-sequence buffers.
//
// Exactness: addRowSums and gemmPackedB are bit-identical in both
// implementations (and gemmPackedB to gemm). The cells are not: the reference evaluates
// each formula in float64 with Math.exp / Math.tanh and rounds once when it
// stores; the wasm cells compute in float32 with fixed polynomials for
// exp / tanh (about 2e-7 relative). Both are deterministic, and every
// element depends only on its own inputs, so each gives the same bits for a
// row whatever the batch; but every worker of a run must use the same ones.

import { gemm } from './kernels.js';

export interface CellKernels {
  readonly name: string;
  /**
   * LSTM forward step t (gates i f g o, G = 4H):
   *   z = act(b, t) + zh(b) + bias; act(b, t) <- (sigmoid z_i, sigmoid z_f, tanh z_g, sigmoid z_o)
   *   c(b, t+1) = f * c(b, t) + i * g;  tc(b, t) = tanh(c(b, t+1))
   *   hPrev(b, t) = h(b);  h(b) = o * tc(b, t)
   * act (B, T, 4H), zh (B, 4H), bias (4H), c (B, T+1, H), tc (B, T, H), hPrev (B, T, H), h (B, H).
   */
  lstmForwardStep(B: number, T: number, H: number, t: number,
    act: Float32Array, zh: Float32Array, bias: Float32Array,
    c: Float32Array, tc: Float32Array, hPrev: Float32Array, h: Float32Array): void;
  /**
   * LSTM backward step t. dh, dc (B, H): gradient on h_t, c_t from later
   * steps; dy (B, T, H) or null is added to dh. Writes dz_t into dG (B, T, 4H)
   * and dGt (B, 4H), and dc_{t-1} into dc. dh is left for the caller's product.
   */
  lstmBackwardStep(B: number, T: number, H: number, t: number,
    act: Float32Array, c: Float32Array, tc: Float32Array, dy: Float32Array | null,
    dh: Float32Array, dc: Float32Array, dG: Float32Array, dGt: Float32Array): void;
  /**
   * GRU forward step t (gates r z n, G = 3H):
   *   r = sigmoid(a_r + b_ir + zh_r + b_hr), z likewise, hn(b, t) = zh_n + b_hn,
   *   n = tanh(a_n + b_in + r * hn); act(b, t) <- (r, z, n);
   *   hPrev(b, t) = h(b); h(b) = (1 - z) * n + z * h(b)
   * act (B, T, 3H), zh (B, 3H), bih bhh (3H), hn hPrev (B, T, H), h (B, H).
   */
  gruForwardStep(B: number, T: number, H: number, t: number,
    act: Float32Array, zh: Float32Array, bih: Float32Array, bhh: Float32Array,
    hn: Float32Array, hPrev: Float32Array, h: Float32Array): void;
  /**
   * GRU backward step t. dh (B, H): gradient on h_t (dy (B, T, H) or null
   * added). Writes dLoss/d(a_t) into dGx (B, T, 3H), dLoss/d(zh_t) into dGh
   * (B, T, 3H) and dGt (B, 3H), and the direct part dht * z of dh_{t-1} into dh.
   */
  gruBackwardStep(B: number, T: number, H: number, t: number,
    act: Float32Array, hn: Float32Array, hPrev: Float32Array, dy: Float32Array | null,
    dh: Float32Array, dGx: Float32Array, dGh: Float32Array, dGt: Float32Array): void;
  /**
   * db (N) += sum over the R rows of dG (R, N), row 0 first. Every partial
   * sum is stored in db (a float32), so rows [0, R1) in one call and [R1, R)
   * in a second give the same bits as one call over [0, R).
   */
  addRowSums(db: Float32Array, dG: Float32Array, R: number, N: number): void;
  /**
   * Floats that packB needs to prepare op(B) (k, n) for gemmPackedB; 0 when
   * the implementation uses B as it is (the reference).
   */
  packedBLength(n: number, k: number): number;
  /**
   * Prepares op(B) (k, n) (B stored (n, k) with transB, else (k, n)) for many
   * products with the same B, e.g. W_hh at every timestep: writes
   * packedBLength(n, k) floats into packed. B must not change while packed is used.
   */
  packB(transB: boolean, n: number, k: number, b: Float32Array, packed: Float32Array): void;
  /**
   * C (m, n) = [C +] A (m, k) op(B), with op(B) prepared by packB: the same
   * bits as gemm(false, transB, m, n, k, a, b, c, accumulate) (kernels.ts).
   */
  gemmPackedB(m: number, n: number, k: number, a: Float32Array,
    transB: boolean, b: Float32Array, packed: Float32Array, c: Float32Array, accumulate: boolean): void;
}

export const tsCells: CellKernels = {
  name: 'typescript',

  lstmForwardStep(B, T, H, t, act, zh, b, c, tc, hPrev, h) {
    const G = 4 * H, H2 = 2 * H, H3 = 3 * H;
    for (let bi = 0; bi < B; bi++) {
      const ra = (bi * T + t) * G;       // row (b, t) of act
      const rz = bi * G;                 // row b of zh
      const rc = (bi * (T + 1) + t) * H; // c_{t-1}; c_t is at rc + H
      const rt = (bi * T + t) * H;       // row (b, t) of tc, hPrev
      const rh = bi * H;                 // row b of h
      for (let j = 0; j < H; j++) {
        const i = 1 / (1 + Math.exp(-(act[ra + j] + zh[rz + j] + b[j])));
        const f = 1 / (1 + Math.exp(-(act[ra + H + j] + zh[rz + H + j] + b[H + j])));
        const g = Math.tanh(act[ra + H2 + j] + zh[rz + H2 + j] + b[H2 + j]);
        const o = 1 / (1 + Math.exp(-(act[ra + H3 + j] + zh[rz + H3 + j] + b[H3 + j])));
        act[ra + j] = i;
        act[ra + H + j] = f;
        act[ra + H2 + j] = g;
        act[ra + H3 + j] = o;
        c[rc + H + j] = f * c[rc + j] + i * g;
        // NOTE: tanh of the stored float32 c_t, the value backward sees.
        const tcj = Math.tanh(c[rc + H + j]);
        tc[rt + j] = tcj;
        hPrev[rt + j] = h[rh + j];
        h[rh + j] = o * tcj;
      }
    }
  },

  lstmBackwardStep(B, T, H, t, act, c, tc, dy, dh, dc, dG, dGt) {
    const G = 4 * H, H2 = 2 * H, H3 = 3 * H;
    for (let bi = 0; bi < B; bi++) {
      const ra = (bi * T + t) * G, rg = bi * G, rc = (bi * (T + 1) + t) * H;
      const rt = (bi * T + t) * H, rh = bi * H;
      for (let j = 0; j < H; j++) {
        const dht = dy !== null ? dh[rh + j] + dy[rt + j] : dh[rh + j];
        const i = act[ra + j], f = act[ra + H + j], g = act[ra + H2 + j], o = act[ra + H3 + j];
        const tcj = tc[rt + j];
        const dct = dc[rh + j] + dht * o * (1 - tcj * tcj);
        const dzi = dct * g * i * (1 - i);
        const dzf = dct * c[rc + j] * f * (1 - f);
        const dzg = dct * i * (1 - g * g);
        const dzo = dht * tcj * o * (1 - o);
        dc[rh + j] = dct * f; // dc_{t-1}
        dG[ra + j] = dzi; dG[ra + H + j] = dzf; dG[ra + H2 + j] = dzg; dG[ra + H3 + j] = dzo;
        dGt[rg + j] = dzi; dGt[rg + H + j] = dzf; dGt[rg + H2 + j] = dzg; dGt[rg + H3 + j] = dzo;
      }
    }
  },

  gruForwardStep(B, T, H, t, act, zh, b_ih, b_hh, hn, hPrev, h) {
    const G = 3 * H, H2 = 2 * H;
    for (let bi = 0; bi < B; bi++) {
      const ra = (bi * T + t) * G, rz = bi * G, rt = (bi * T + t) * H, rh = bi * H;
      for (let j = 0; j < H; j++) {
        const r = 1 / (1 + Math.exp(-(act[ra + j] + b_ih[j] + zh[rz + j] + b_hh[j])));
        const z = 1 / (1 + Math.exp(-(act[ra + H + j] + b_ih[H + j] + zh[rz + H + j] + b_hh[H + j])));
        hn[rt + j] = zh[rz + H2 + j] + b_hh[H2 + j];
        // NOTE: r times the stored float32 hn, the value backward sees.
        const n = Math.tanh(act[ra + H2 + j] + b_ih[H2 + j] + r * hn[rt + j]);
        act[ra + j] = r;
        act[ra + H + j] = z;
        act[ra + H2 + j] = n;
        const hp = h[rh + j];
        hPrev[rt + j] = hp;
        h[rh + j] = (1 - z) * n + z * hp;
      }
    }
  },

  gruBackwardStep(B, T, H, t, act, hn, hPrev, dy, dh, dGx, dGh, dGt) {
    const G = 3 * H, H2 = 2 * H;
    for (let bi = 0; bi < B; bi++) {
      const ra = (bi * T + t) * G, rg = bi * G, rt = (bi * T + t) * H, rh = bi * H;
      for (let j = 0; j < H; j++) {
        const dht = dy !== null ? dh[rh + j] + dy[rt + j] : dh[rh + j];
        const r = act[ra + j], z = act[ra + H + j], n = act[ra + H2 + j];
        const dzn = dht * (1 - z) * (1 - n * n);
        const dzz = dht * (hPrev[rt + j] - n) * z * (1 - z);
        const dzr = dzn * hn[rt + j] * r * (1 - r);
        const dhn = dzn * r;
        dGx[ra + j] = dzr; dGx[ra + H + j] = dzz; dGx[ra + H2 + j] = dzn;
        dGh[ra + j] = dzr; dGh[ra + H + j] = dzz; dGh[ra + H2 + j] = dhn;
        dGt[rg + j] = dzr; dGt[rg + H + j] = dzz; dGt[rg + H2 + j] = dhn;
        dh[rh + j] = dht * z; // the direct path of dh_{t-1}; the caller's product adds the rest
      }
    }
  },

  addRowSums(db, dG, R, N) {
    for (let r = 0; r < R; r++) {
      const row = r * N;
      for (let j = 0; j < N; j++) db[j] += dG[row + j];
    }
  },

  packedBLength: () => 0,
  packB: () => {},
  gemmPackedB(m, n, k, a, transB, b, _packed, c, accumulate) {
    gemm(false, transB, m, n, k, a, b, c, accumulate);
  },
};

let active: CellKernels = tsCells;

/** The cell kernels the recurrent layers call. */
export function cells(): CellKernels {
  return active;
}

/** Swap the implementation (null: back to the reference). */
export function setCellKernels(k: CellKernels | null): void {
  active = k ?? tsCells;
}
