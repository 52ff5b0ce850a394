// The recurrent kernels beyond gemm (src/tensor/cells.ts): the wasm SIMD
// LSTM/GRU cells against the TypeScript reference WITHIN TOLERANCE (their
// exp / tanh are polynomials), row independence BIT FOR BIT, the row sums
// and the products with a prepacked B BIT FOR BIT, and the accuracy of the
// polynomial exp / sigmoid / tanh themselves.
import { beforeAll, describe, expect, it } from 'vitest';
import { tsCells } from '../../src/tensor/cells.js';
import { tsKernels } from '../../src/tensor/kernels.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { expectBits, expectClose, fill, newKernels, wasmBytes } from './wasm-helpers.js';

let wk: WasmKernels;
beforeAll(() => {
  wk = newKernels();
});

// Awkward shapes: H not a multiple of 4 (vector tails), B = 1, T = 1.
const SHAPES: ReadonlyArray<[B: number, T: number, H: number]> = [
  [1, 1, 1], [1, 3, 4], [2, 2, 3], [3, 5, 5], [5, 4, 7], [4, 3, 8], [2, 6, 13], [7, 2, 16], [3, 3, 33],
];

/** Copies of `arrs` in the wasm memory (inside) or on the heap. */
function copies(arrs: Float32Array[], inside: boolean): Float32Array[] {
  return arrs.map((a) => {
    const c = inside ? wk.alloc(a.length) : new Float32Array(a.length);
    c.set(a);
    return c;
  });
}

describe('wasm cells: close to the TypeScript reference', () => {
  for (const [B, T, H] of SHAPES) {
    it(`LSTM forward + backward steps, B=${B} T=${T} H=${H}`, () => {
      const G = 4 * H;
      const seed = B * 1000 + T * 100 + H;
      // Inputs of one forward step at every t; act scaled so gates saturate sometimes.
      const init = [
        fill(new Float32Array(B * T * G), seed, 8), fill(new Float32Array(B * G), seed + 1), fill(new Float32Array(G), seed + 2, 1),
        fill(new Float32Array(B * (T + 1) * H), seed + 3), new Float32Array(B * T * H), new Float32Array(B * T * H),
        fill(new Float32Array(B * H), seed + 4, 2),
      ];
      for (const inside of [true, false]) {
        const ref = copies(init, false);
        const got = copies(init, inside);
        for (let t = 0; t < T; t++) {
          tsCells.lstmForwardStep(B, T, H, t, ref[0], ref[1], ref[2], ref[3], ref[4], ref[5], ref[6]);
          wk.lstmForwardStep(B, T, H, t, got[0], got[1], got[2], got[3], got[4], got[5], got[6]);
        }
        const names = ['act', 'zh', 'bias', 'c', 'tc', 'hPrev', 'h'];
        for (let i = 0; i < names.length; i++) expectClose(got[i], ref[i], `lstm forward ${names[i]} (${inside ? 'in' : 'out of'} wasm memory)`);

        // Backward from the reference's forward state (the same inputs for both).
        const state = [ref[0], ref[3], ref[4]];
        const binit = [
          fill(new Float32Array(B * T * H), seed + 5), fill(new Float32Array(B * H), seed + 6), fill(new Float32Array(B * H), seed + 7),
          new Float32Array(B * T * G), new Float32Array(B * G),
        ];
        for (const withDy of [true, false]) {
          const r = copies(binit, false), g = copies(binit, inside), s = copies(state, inside);
          for (let t = T - 1; t >= 0; t--) {
            tsCells.lstmBackwardStep(B, T, H, t, state[0], state[1], state[2], withDy ? r[0] : null, r[1], r[2], r[3], r[4]);
            wk.lstmBackwardStep(B, T, H, t, s[0], s[1], s[2], withDy ? g[0] : null, g[1], g[2], g[3], g[4]);
          }
          const bn = ['dy', 'dh', 'dc', 'dG', 'dGt'];
          for (let i = 1; i < bn.length; i++) expectClose(g[i], r[i], `lstm backward ${bn[i]} dy=${withDy}`);
        }
      }
    });

    it(`GRU forward + backward steps, B=${B} T=${T} H=${H}`, () => {
      const G = 3 * H;
      const seed = 7 + B * 1000 + T * 100 + H;
      const init = [
        fill(new Float32Array(B * T * G), seed, 8), fill(new Float32Array(B * G), seed + 1),
        fill(new Float32Array(G), seed + 2, 1), fill(new Float32Array(G), seed + 3, 1),
        new Float32Array(B * T * H), new Float32Array(B * T * H), fill(new Float32Array(B * H), seed + 4, 2),
      ];
      for (const inside of [true, false]) {
        const ref = copies(init, false);
        const got = copies(init, inside);
        for (let t = 0; t < T; t++) {
          tsCells.gruForwardStep(B, T, H, t, ref[0], ref[1], ref[2], ref[3], ref[4], ref[5], ref[6]);
          wk.gruForwardStep(B, T, H, t, got[0], got[1], got[2], got[3], got[4], got[5], got[6]);
        }
        const names = ['act', 'zh', 'bih', 'bhh', 'hn', 'hPrev', 'h'];
        for (let i = 0; i < names.length; i++) expectClose(got[i], ref[i], `gru forward ${names[i]} (${inside ? 'in' : 'out of'} wasm memory)`);

        const state = [ref[0], ref[4], ref[5]];
        const binit = [
          fill(new Float32Array(B * T * H), seed + 5), fill(new Float32Array(B * H), seed + 6),
          new Float32Array(B * T * G), new Float32Array(B * T * G), new Float32Array(B * G),
        ];
        for (const withDy of [true, false]) {
          const r = copies(binit, false), g = copies(binit, inside), s = copies(state, inside);
          for (let t = T - 1; t >= 0; t--) {
            tsCells.gruBackwardStep(B, T, H, t, state[0], state[1], state[2], withDy ? r[0] : null, r[1], r[2], r[3], r[4]);
            wk.gruBackwardStep(B, T, H, t, s[0], s[1], s[2], withDy ? g[0] : null, g[1], g[2], g[3], g[4]);
          }
          const bn = ['dy', 'dh', 'dGx', 'dGh', 'dGt'];
          for (let i = 1; i < bn.length; i++) expectClose(g[i], r[i], `gru backward ${bn[i]} dy=${withDy}`);
        }
      }
    });
  }

  it('refuses short operands and a t outside 0..T-1 with DPT_ERR_SHAPE', () => {
    const B = 2, T = 3, H = 4, G = 16;
    const a = () => wk.alloc(B * T * G);
    expect(() => wk.lstmForwardStep(B, T, H, 0, a(), wk.alloc(B * G - 1), wk.alloc(G), wk.alloc(B * (T + 1) * H),
      wk.alloc(B * T * H), wk.alloc(B * T * H), wk.alloc(B * H)))
      .toThrow(expect.objectContaining({ code: 'DPT_ERR_SHAPE', message: expect.stringContaining('zh has 31 floats') }));
    expect(() => wk.lstmForwardStep(B, T, H, 3, a(), wk.alloc(B * G), wk.alloc(G), wk.alloc(B * (T + 1) * H),
      wk.alloc(B * T * H), wk.alloc(B * T * H), wk.alloc(B * H)))
      .toThrow(expect.objectContaining({ code: 'DPT_ERR_SHAPE', message: expect.stringContaining('0 <= t < T') }));
  });
});

describe('wasm cells: a row computes the same bits whatever the batch', () => {
  it('LSTM and GRU, forward and backward: rows alone equal the same rows inside B = 6', () => {
    const B = 6, T = 3, H = 11;
    for (const [kind, G] of [['lstm', 4 * H], ['gru', 3 * H]] as const) {
      const cRows = kind === 'lstm' ? T + 1 : T; // per-row slots of the second state buffer
      const act = fill(wk.alloc(B * T * G), 1, 8), zh = fill(wk.alloc(B * G), 2), b1 = fill(wk.alloc(G), 3), b2 = fill(wk.alloc(G), 4);
      const st = fill(wk.alloc(B * cRows * H), 5), s2 = wk.alloc(B * T * H), s3 = wk.alloc(B * T * H), h = fill(wk.alloc(B * H), 6);
      // Row r of each buffer, as a batch of one.
      const row = (buf: Float32Array, per: number, r: number): Float32Array => {
        const out = wk.alloc(per);
        out.set(buf.subarray(r * per, (r + 1) * per));
        return out;
      };
      const rowsAlone = Array.from({ length: B }, (_, r) => ({
        act: row(act, T * G, r), zh: row(zh, G, r), st: row(st, cRows * H, r), s2: wk.alloc(T * H), s3: wk.alloc(T * H), h: row(h, H, r),
      }));
      for (let t = 0; t < T; t++) {
        if (kind === 'lstm') wk.lstmForwardStep(B, T, H, t, act, zh, b1, st, s2, s3, h);
        else wk.gruForwardStep(B, T, H, t, act, zh, b1, b2, s2, s3, h);
        for (const x of rowsAlone) {
          if (kind === 'lstm') wk.lstmForwardStep(1, T, H, t, x.act, x.zh, b1, x.st, x.s2, x.s3, x.h);
          else wk.gruForwardStep(1, T, H, t, x.act, x.zh, b1, b2, x.s2, x.s3, x.h);
        }
      }
      rowsAlone.forEach((x, r) => {
        expectBits(x.act, act.subarray(r * T * G, (r + 1) * T * G), `${kind} forward act row ${r}`);
        expectBits(x.h, h.subarray(r * H, (r + 1) * H), `${kind} forward h row ${r}`);
        expectBits(x.s3, s3.subarray(r * T * H, (r + 1) * T * H), `${kind} forward hPrev row ${r}`);
      });

      // Backward, from the state just computed.
      const dy = fill(wk.alloc(B * T * H), 7), dh = fill(wk.alloc(B * H), 8), dc = fill(wk.alloc(B * H), 9);
      const o1 = wk.alloc(B * T * G), o2 = wk.alloc(B * T * G), o3 = wk.alloc(B * G);
      const alone = rowsAlone.map((x, r) => ({
        ...x, dy: row(dy, T * H, r), dh: row(dh, H, r), dc: row(dc, H, r), o1: wk.alloc(T * G), o2: wk.alloc(T * G), o3: wk.alloc(G),
      }));
      for (let t = T - 1; t >= 0; t--) {
        if (kind === 'lstm') wk.lstmBackwardStep(B, T, H, t, act, st, s2, dy, dh, dc, o1, o3);
        else wk.gruBackwardStep(B, T, H, t, act, s2, s3, dy, dh, o1, o2, o3);
        for (const x of alone) {
          if (kind === 'lstm') wk.lstmBackwardStep(1, T, H, t, x.act, x.st, x.s2, x.dy, x.dh, x.dc, x.o1, x.o3);
          else wk.gruBackwardStep(1, T, H, t, x.act, x.s2, x.s3, x.dy, x.dh, x.o1, x.o2, x.o3);
        }
      }
      alone.forEach((x, r) => {
        expectBits(x.o1, o1.subarray(r * T * G, (r + 1) * T * G), `${kind} backward dG row ${r}`);
        expectBits(x.dh, dh.subarray(r * H, (r + 1) * H), `${kind} backward dh row ${r}`);
        if (kind === 'lstm') expectBits(x.dc, dc.subarray(r * H, (r + 1) * H), `lstm backward dc row ${r}`);
      });
    }
  });
});

describe('wasm row sums and prepacked products: bit-identical to the reference', () => {
  it('addRowSums over awkward shapes, and split in two calls', () => {
    for (const [R, N] of [[1, 1], [3, 5], [7, 16], [9, 17], [224, 512], [13, 35]] as const) {
      const dG = fill(wk.alloc(R * N), R + N);
      const db = fill(wk.alloc(N), 99);
      const ref = Float32Array.from(db);
      tsCells.addRowSums(ref, dG, R, N);
      wk.addRowSums(db, dG, R, N);
      expectBits(db, ref, `addRowSums R=${R} N=${N}`);
      // Out of wasm memory, and rows [0, R1) then [R1, R).
      const heap = fill(new Float32Array(N), 99);
      const R1 = Math.floor(R / 2);
      wk.addRowSums(heap, Float32Array.from(dG.subarray(0, R1 * N)), R1, N);
      wk.addRowSums(heap, dG.subarray(R1 * N), R - R1, N);
      expectBits(heap, ref, `addRowSums R=${R} N=${N} in two calls, on the heap`);
    }
  });

  it('gemmPackedB equals gemm, both transB forms, accumulate on and off, across the blocking', () => {
    for (const [m, n, k] of [[1, 1, 1], [8, 512, 128], [8, 128, 512], [5, 9, 300], [13, 1030, 7], [3, 17, 513], [131, 40, 64]] as const) {
      for (const transB of [false, true]) {
        const b = fill(wk.alloc(n * k), m + n + k);
        const packed = wk.alloc(wk.packedBLength(n, k));
        wk.packB(transB, n, k, b, packed);
        for (const accumulate of [false, true]) {
          const a = fill(wk.alloc(m * k), 5 + m);
          const c0 = fill(wk.alloc(m * n), 6 + n);
          const ref = Float32Array.from(c0);
          tsKernels.gemm(false, transB, m, n, k, a, b, ref, accumulate);
          const c = Float32Array.from(c0);
          wk.gemmPackedB(m, n, k, a, transB, b, packed, c, accumulate);
          expectBits(c, ref, `gemmPackedB M=${m} N=${n} K=${k} transB=${transB} acc=${accumulate}`);
          // The reference's version of the same call.
          const viaTs = Float32Array.from(c0);
          tsCells.gemmPackedB(m, n, k, a, transB, b, new Float32Array(tsCells.packedBLength(n, k)), viaTs, accumulate);
          expectBits(viaTs, ref, `tsCells.gemmPackedB M=${m} N=${n} K=${k}`);
        }
      }
    }
  });
});

describe('wasm exp / sigmoid / tanh polynomials', () => {
  interface MathExports { expf32(x: number): number; sigmoidf32(x: number): number; tanhf32(x: number): number }
  let m: MathExports;
  beforeAll(() => {
    const mod = new WebAssembly.Module(wasmBytes());
    const memory = new WebAssembly.Memory({ initial: 64, maximum: 64 });
    m = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as MathExports;
  });

  it('agree with Math.exp / Math.tanh to 2.5e-7 relative on float32 inputs', () => {
    let worst = { exp: 0, sigmoid: 0, tanh: 0 };
    const check = (x: number): void => {
      const e = Math.exp(x), s = 1 / (1 + Math.exp(-x)), t = Math.tanh(x);
      if (x > -87 && x < 88) worst.exp = Math.max(worst.exp, Math.abs(m.expf32(x) - e) / e);
      if (x > -80) worst.sigmoid = Math.max(worst.sigmoid, Math.abs(m.sigmoidf32(x) - s) / s);
      if (t !== 0) worst.tanh = Math.max(worst.tanh, Math.abs(m.tanhf32(x) - t) / Math.abs(t));
    };
    for (let i = 0; i <= 200_000; i++) check(Math.fround(-90 + (180 * i) / 200_000));
    for (let i = 0; i <= 20_000; i++) { const x = Math.fround(1e-9 * 10 ** (9 * i / 20_000)); check(x); check(-x); }
    expect(worst.exp).toBeLessThan(2.5e-7);
    expect(worst.sigmoid).toBeLessThan(2.5e-7);
    expect(worst.tanh).toBeLessThan(2.5e-7);
  });

  it('keep their limits and symmetries', () => {
    expect(Object.is(m.tanhf32(-0), -0)).toBe(true);
    expect(m.tanhf32(0)).toBe(0);
    expect(m.tanhf32(50)).toBe(1);
    expect(m.tanhf32(-50)).toBe(-1);
    expect(m.sigmoidf32(0)).toBe(0.5);
    expect(m.sigmoidf32(100)).toBe(1);
    expect(m.sigmoidf32(-100)).toBeLessThan(1e-37);
    expect(m.expf32(0)).toBe(1);
    for (const x of [0.1, 0.5, 0.7, 1.3, 3, 9.5]) expect(m.tanhf32(-x)).toBe(-m.tanhf32(x));
  });
});
