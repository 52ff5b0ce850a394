// The WebAssembly convolution and pooling kernels against the TypeScript
// reference, BIT FOR BIT (the contract in src/tensor/conv-kernels.ts): many
// geometries (kernel, stride, padding, dilation, channel counts that leave
// partial register tiles), gradients accumulated onto nonzero values,
// operands inside and outside the wasm memory.
import { beforeAll, describe, expect, it } from 'vitest';
import { windowGeometry, type Padding, type Pair, type WindowGeometry } from '../../src/nn/conv-geometry.js';
import { tsConvKernels } from '../../src/tensor/conv-ts.js';
import type { WasmKernels } from '../../src/tensor/wasm-kernels.js';
import { expectBits, fill, newKernels } from './wasm-helpers.js';

let wk: WasmKernels;
beforeAll(() => { wk = newKernels(64 * 1024 * 1024); });

interface ConvCase { inShape: [number, number, number]; O: number; k: Pair; s?: Pair; p?: Padding; d?: Pair; N: number; bias: boolean }

const CONV_CASES: ConvCase[] = [
  { inShape: [1, 28, 28], O: 8, k: 5, N: 3, bias: true },               // the CNN's first layer
  { inShape: [8, 12, 12], O: 16, k: 5, N: 2, bias: true },              // and its second
  { inShape: [2, 10, 6], O: 4, k: 3, N: 3, bias: true },
  { inShape: [2, 11, 6], O: 4, k: 3, s: 2, p: 1, N: 3, bias: true },
  { inShape: [2, 10, 8], O: 4, k: [5, 3], s: [1, 2], p: [2, 1], N: 3, bias: true },
  { inShape: [2, 12, 8], O: 4, k: 3, p: 2, d: 2, N: 2, bias: true },
  { inShape: [3, 9, 13], O: 7, k: 3, p: 'same', N: 2, bias: false },    // O = 7: a partial 4-row panel
  { inShape: [3, 9, 13], O: 10, k: [2, 4], p: 'same', N: 1, bias: true }, // two 5-row panels, asymmetric padding
  { inShape: [5, 7, 20], O: 13, k: 1, N: 2, bias: true },                // 1x1, K = 5
  { inShape: [2, 9, 9], O: 3, k: 3, s: 3, N: 2, bias: true },            // stride = kernel
  { inShape: [4, 6, 17], O: 9, k: [3, 2], s: [2, 1], d: [1, 3], p: [1, 2], N: 3, bias: true },
  { inShape: [1, 5, 5], O: 1, k: 5, N: 1, bias: true },                  // one output
];

function geometry(c: ConvCase): WindowGeometry {
  return windowGeometry('test', c.inShape, c.O, c.k, c.s, c.p, c.d);
}

function buf(n: number, inside: boolean): Float32Array {
  return inside ? wk.alloc(n) : new Float32Array(n);
}

function checkConv(c: ConvCase, inside: boolean, seed: number): void {
  const g = geometry(c);
  const { N } = c, K = g.C * g.kh * g.kw;
  const label = `${JSON.stringify(c)} ${inside ? 'in' : 'out of'} wasm memory`;
  const x = fill(buf(N * g.C * g.H * g.W, inside), seed);
  const W = fill(buf(g.O * K, inside), seed + 1);
  const b = c.bias ? fill(buf(g.O, inside), seed + 2) : null;
  const dy = fill(buf(N * g.O * g.Ho * g.Wo, inside), seed + 3);
  const run = (k: typeof tsConvKernels, withDx: boolean) => {
    const y = buf(N * g.O * g.Ho * g.Wo, inside).fill(NaN);
    const keep = buf(k.convKeepLength(g, N), inside);
    const scratch = buf(k.convScratchLength(g, N), inside);
    k.convForward(y, x, W, b, g, N, keep, scratch);
    const dW = fill(buf(g.O * K, inside), seed + 4); // accumulates onto these
    const db = c.bias ? fill(buf(g.O, inside), seed + 5) : null;
    const dx = withDx ? buf(N * g.C * g.H * g.W, inside).fill(NaN) : null;
    k.convBackward(dx, dW, db, dy, x, W, g, N, keep, scratch);
    return { y: y.slice(), dW: dW.slice(), db: db?.slice(), dx: dx?.slice() };
  };
  const ref = run(tsConvKernels, true);
  const got = run(wk, true);
  expectBits(got.y, ref.y, `y ${label}`);
  expectBits(got.dW, ref.dW, `dW ${label}`);
  if (ref.db) expectBits(got.db!, ref.db, `db ${label}`);
  expectBits(got.dx!, ref.dx!, `dx ${label}`);
  const noDx = run(wk, false);
  expectBits(noDx.dW, ref.dW, `dW without dx ${label}`);
  // The other method (im2col + gemm everywhere) gives the same bits.
  wk.setConvMethod('im2col');
  try {
    const other = run(wk, true);
    expectBits(other.y, ref.y, `y (im2col) ${label}`);
    expectBits(other.dW, ref.dW, `dW (im2col) ${label}`);
    if (ref.db) expectBits(other.db!, ref.db, `db (im2col) ${label}`);
    expectBits(other.dx!, ref.dx!, `dx (im2col) ${label}`);
  } finally {
    wk.setConvMethod('direct');
  }
}

describe('wasm convolution: bit-identical to the TypeScript reference', () => {
  CONV_CASES.forEach((c, i) => {
    it(`${JSON.stringify(c.inShape)} O=${c.O} k=${JSON.stringify(c.k)} s=${JSON.stringify(c.s ?? 1)} p=${JSON.stringify(c.p ?? 0)} d=${JSON.stringify(c.d ?? 1)} N=${c.N}`, () => {
      checkConv(c, true, 100 * i);
      checkConv(c, false, 100 * i + 50);
    });
  });

  it('each sample of a batch gets the bits it gets alone', () => {
    const c = CONV_CASES[1];
    const g = geometry(c);
    const per = g.C * g.H * g.W, out = g.O * g.Ho * g.Wo, K = g.C * g.kh * g.kw;
    const x = fill(wk.alloc(3 * per), 7), W = fill(wk.alloc(g.O * K), 8), b = fill(wk.alloc(g.O), 9);
    const y = wk.alloc(3 * out);
    wk.convForward(y, x, W, b, g, 3, wk.alloc(wk.convKeepLength(g, 3)), wk.alloc(wk.convScratchLength(g, 3)));
    const y1 = wk.alloc(out);
    for (let n = 0; n < 3; n++) {
      wk.convForward(y1, x.subarray(n * per, (n + 1) * per), W, b, g, 1, wk.alloc(wk.convKeepLength(g, 1)), wk.alloc(wk.convScratchLength(g, 1)));
      expectBits(y1, y.slice(n * out, (n + 1) * out), `sample ${n}`);
    }
  });

  it('too-short operands are refused with DPT_ERR_SHAPE naming the operand', () => {
    const g = geometry(CONV_CASES[2]);
    const keep = wk.alloc(wk.convKeepLength(g, 2)), scratch = wk.alloc(wk.convScratchLength(g, 2));
    expect(() => wk.convForward(wk.alloc(10), wk.alloc(240), wk.alloc(72), null, g, 2, keep, scratch))
      .toThrow(/convForward: y has 10 floats, needs 256 for N=2 of \[2, 10, 6\] -> \[4, 8, 4\], window 3x3/);
  });
});

interface PoolCase { inShape: [number, number, number]; k: Pair; s?: Pair; p?: Padding; N: number }
const POOL_CASES: PoolCase[] = [
  { inShape: [8, 24, 24], k: 2, N: 3 },     // the CNN's pools (SIMD path)
  { inShape: [16, 8, 8], k: 2, N: 2 },
  { inShape: [3, 7, 13], k: 2, N: 2 },      // odd sizes: floor mode, a scalar tail
  { inShape: [3, 7, 9], k: 3, s: 2, p: 1, N: 3 },
  { inShape: [2, 5, 5], k: 2, s: 1, N: 2 },
  { inShape: [2, 7, 6], k: 3, s: 2, p: 'same', N: 2 },
  { inShape: [1, 6, 9], k: [3, 2], s: [1, 2], p: [1, 1], N: 2 },
];

describe('wasm pooling: bit-identical to the TypeScript reference', () => {
  POOL_CASES.forEach((c, i) => {
    for (const inside of [true, false]) {
      it(`${JSON.stringify(c)} ${inside ? 'in' : 'out of'} wasm memory`, () => {
        const g = windowGeometry('test', c.inShape, c.inShape[0], c.k, c.s ?? c.k, c.p, 1);
        const lx = c.N * g.C * g.H * g.W, ly = c.N * g.C * g.Ho * g.Wo;
        const x = fill(buf(lx, inside), 10 * i);
        // A NaN and ties: the first largest wins, a NaN beats everything.
        x[3] = NaN; x[10] = x[11];
        const dy = fill(buf(ly, inside), 10 * i + 1);
        const results = [tsConvKernels, wk].map((k) => {
          const y = buf(ly, inside), arg = buf(ly, inside), dx = buf(lx, inside).fill(NaN);
          k.maxPoolForward(y, arg, x, g, c.N);
          k.maxPoolBackward(dx, dy, arg, g, c.N);
          const ay = [buf(ly, inside), buf(ly, inside)], adx = [buf(lx, inside).fill(NaN), buf(lx, inside).fill(NaN)];
          [true, false].forEach((cip, j) => {
            k.avgPoolForward(ay[j], x, g, c.N, cip);
            k.avgPoolBackward(adx[j], dy, g, c.N, cip);
          });
          return [y, arg, dx, ...ay, ...adx].map((a) => a.slice());
        });
        const names = ['max y', 'argmax', 'max dx', 'avg y', 'avg y (pad not counted)', 'avg dx', 'avg dx (pad not counted)'];
        names.forEach((name, j) => expectBits(results[1][j], results[0][j], `${name} ${JSON.stringify(c)}`));
      });
    }
  });
});
