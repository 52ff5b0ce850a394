// GFLOP/s of the pure-TypeScript gemm on the shapes the bench models use, on
// one thread: the current kernels (src/tensor/kernels.ts, with and without
// the skipping of zeros) against the i-k-j kernel they replaced (copied
// below as the baseline), in interleaved rounds, medians quoted, per second
// of CPU time.
//
//   node dist/bench/gemm.js [--rounds N] [--json]
//
// Shapes are MxKxN: C (M, N) = op(A) op(B), K the shared dimension; forms nn
// (A B), tn (A^T B, A stored (K, M)), nt (A B^T, B stored (N, K)). Operands
// are dense (uniform in [-1, 1), no zeros), so the skipping of zeros finds
// nothing to skip and "ts" measures its overhead; the "mnist" rows feed the
// first dense layer's real shapes with MNIST-like sparsity (81% zero pixels,
// in runs: a pixel is zero with its neighbours) to show what it saves.
// --json prints, as the last line: {"results":[{"shape","form","impl","gflops"}]}.
import { uniform } from '../src/random/counter.js';
import { tsKernels, tsKernelsDense, type Kernels } from '../src/tensor/kernels.js';

const f = Math.fround;

// ---- The kernels before the register tiling, verbatim (4-row i-k-j: C updated in memory at every k).
function gemmNN(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // i-k-j order: B and C are walked along rows, so the inner loop is contiguous.
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p], x1 = a[a1 + p], x2 = a[a2 + p], x3 = a[a3 + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) {
        const y = b[bp + j];
        c[c0 + j] = f(c[c0 + j] + f(x0 * y));
        c[c1 + j] = f(c[c1 + j] + f(x1 * y));
        c[c2 + j] = f(c[c2 + j] + f(x2 * y));
        c[c3 + j] = f(c[c3 + j] + f(x3 * y));
      }
    }
  }
  for (; i < m; i++) {
    const c0 = i * n, a0 = i * k;
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[c0 + j] = f(c[c0 + j] + f(x0 * b[bp + j]));
    }
  }
}

function gemmTN(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // A stored (K, M): A^T[i, p] = a[p*m + i]. Same i-k-j order as NN.
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
    for (let p = 0; p < k; p++) {
      const ap = p * m + i;
      const x0 = a[ap], x1 = a[ap + 1], x2 = a[ap + 2], x3 = a[ap + 3];
      const bp = p * n;
      for (let j = 0; j < n; j++) {
        const y = b[bp + j];
        c[c0 + j] = f(c[c0 + j] + f(x0 * y));
        c[c1 + j] = f(c[c1 + j] + f(x1 * y));
        c[c2 + j] = f(c[c2 + j] + f(x2 * y));
        c[c3 + j] = f(c[c3 + j] + f(x3 * y));
      }
    }
  }
  for (; i < m; i++) {
    const c0 = i * n;
    for (let p = 0; p < k; p++) {
      const x0 = a[p * m + i];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[c0 + j] = f(c[c0 + j] + f(x0 * b[bp + j]));
    }
  }
}

function gemmNT(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // B stored (N, K): each C[i, j] is a dot product of two contiguous rows.
  for (let i = 0; i < m; i++) {
    const a0 = i * k, c0 = i * n;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let s0 = c[c0 + j], s1 = c[c0 + j + 1], s2 = c[c0 + j + 2], s3 = c[c0 + j + 3];
      for (let p = 0; p < k; p++) {
        const x = a[a0 + p];
        s0 = f(s0 + f(x * b[b0 + p]));
        s1 = f(s1 + f(x * b[b1 + p]));
        s2 = f(s2 + f(x * b[b2 + p]));
        s3 = f(s3 + f(x * b[b3 + p]));
      }
      c[c0 + j] = s0; c[c0 + j + 1] = s1; c[c0 + j + 2] = s2; c[c0 + j + 3] = s3;
    }
    for (; j < n; j++) {
      const b0 = j * k;
      let s = c[c0 + j];
      for (let p = 0; p < k; p++) s = f(s + f(a[a0 + p] * b[b0 + p]));
      c[c0 + j] = s;
    }
  }
}

function gemmTT(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = c[i * n + j];
      for (let p = 0; p < k; p++) s = f(s + f(a[p * m + i] * b[j * k + p]));
      c[i * n + j] = s;
    }
  }
}

const baseline: Kernels = {
  name: 'ikj-baseline',
  gemm(transA, transB, m, n, k, a, b, c, accumulate) {
    if (!accumulate) c.fill(0, 0, m * n);
    if (!transA && !transB) gemmNN(m, n, k, a, b, c);
    else if (transA && !transB) gemmTN(m, n, k, a, b, c);
    else if (!transA && transB) gemmNT(m, n, k, a, b, c);
    else gemmTT(m, n, k, a, b, c);
  },
};
// ---- end of the baseline

type Form = 'nn' | 'tn' | 'nt';
interface Shape { label: string; form: Form; m: number; k: number; n: number; sparseA?: boolean }

const SHAPES: Shape[] = [
  { label: 'mlp x W', form: 'nn', m: 64, k: 784, n: 128 },
  { label: 'mlp x^T dy', form: 'tn', m: 784, k: 64, n: 128 },
  { label: 'mlp dy W^T', form: 'nt', m: 64, k: 128, n: 784 },
  { label: 'mlp x W (b256)', form: 'nn', m: 256, k: 784, n: 128 },
  { label: 'mlp x W, mnist', form: 'nn', m: 64, k: 784, n: 128, sparseA: true },
  { label: 'mlp x^T dy, mnist', form: 'tn', m: 784, k: 64, n: 128, sparseA: true },
  { label: 'lstm x W_ih', form: 'nn', m: 64 * 28, k: 28, n: 512 },
  { label: 'lstm h W_hh', form: 'nn', m: 64, k: 128, n: 512 },
  { label: 'lstm (brief) tn', form: 'tn', m: 128, k: 64, n: 512 },
  { label: 'lstm dG W_hh^T', form: 'nt', m: 64, k: 512, n: 128 },
  { label: 'lstm hPrev^T dG', form: 'tn', m: 128, k: 64 * 28, n: 512 },
  { label: 'lstm x^T dG', form: 'tn', m: 28, k: 64 * 28, n: 512 },
];

const IMPLS: Kernels[] = [baseline, tsKernelsDense, tsKernels];

/** MNIST-like A: pixels (rows of 784, or the transpose) zero outside a random blob, like a digit's strokes. */
function sparseMnistLike(a: Float32Array, s: Shape, seed: number): void {
  const samples = s.form === 'tn' ? s.k : s.m;
  for (let r = 0; r < samples; r++) {
    const cy = 8 + 12 * uniform(seed, r, 0), cx = 8 + 12 * uniform(seed, r, 1);
    for (let px = 0; px < 784; px++) {
      const y = Math.floor(px / 28), x = px % 28;
      const d = Math.hypot(y - cy, x - cx);
      const on = d < 7 && Math.abs(d - 4) < 1.6 + uniform(seed, r, px + 2); // a ring: ~19% of the pixels
      const v = on ? uniform(seed, r, px + 1000) : 0;
      if (s.form === 'tn') a[r * s.m + px] = v; // stored (K, M) = (samples, pixels)
      else a[r * s.k + px] = v;
    }
  }
}

function operands(s: Shape): { a: Float32Array; b: Float32Array; c: Float32Array } {
  const a = new Float32Array(s.m * s.k), b = new Float32Array(s.k * s.n);
  for (let i = 0; i < a.length; i++) a[i] = 2 * uniform(1, i) - 1;
  for (let i = 0; i < b.length; i++) b[i] = 2 * uniform(2, i) - 1;
  if (s.sparseA) sparseMnistLike(a, s, 3);
  return { a, b, c: new Float32Array(s.m * s.n) };
}

function median(xs: number[]): number {
  const v = [...xs].sort((x, y) => x - y);
  const h = v.length >> 1;
  return v.length % 2 === 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

const args = process.argv.slice(2);
const json = args.includes('--json');
const ri = args.indexOf('--rounds');
const rounds = ri >= 0 ? Number(args[ri + 1]) : 7;
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${args[ri + 1]}`);

interface Case { s: Shape; impl: Kernels; run: () => void; flops: number; reps: number; rates: number[] }
const cases: Case[] = [];
for (const s of SHAPES) {
  const { a, b, c } = operands(s);
  const tA = s.form === 'tn', tB = s.form === 'nt';
  for (const impl of IMPLS) {
    cases.push({
      s, impl, flops: 2 * s.m * s.n * s.k, reps: 1, rates: [],
      run: () => impl.gemm(tA, tB, s.m, s.n, s.k, a, b, c, false),
    });
  }
}
// Warm up and calibrate each case to ~60 ms per round.
for (const cs of cases) {
  for (let w = 0; w < 3; w++) cs.run();
  const t0 = performance.now();
  cs.run();
  const ms = Math.max(performance.now() - t0, 0.01);
  cs.reps = Math.max(1, Math.round(60 / ms));
}
// Timed by the process's CPU time (microseconds), which other work on a
// shared machine does not inflate the way it does wall-clock time.
for (let r = 0; r < rounds; r++) {
  for (const cs of cases) {
    const t0 = process.cpuUsage();
    for (let q = 0; q < cs.reps; q++) cs.run();
    const t = process.cpuUsage(t0);
    cs.rates.push((cs.flops * cs.reps) / ((t.user + t.system) * 1e3));
  }
}

const results = cases.map((cs) => ({
  shape: `${cs.s.m}x${cs.s.k}x${cs.s.n}${cs.s.sparseA ? '-mnist' : ''}`, form: cs.s.form, impl: cs.impl.name,
  gflops: Math.round(median(cs.rates) * 100) / 100,
}));
const out = json ? process.stderr : process.stdout;
out.write(`GFLOP/s (2*M*N*K per CPU second), one thread, median of ${rounds} rounds\n`);
out.write(`${'case'.padEnd(20)}${'form'.padEnd(5)}${'MxKxN'.padEnd(14)}${IMPLS.map((k) => k.name.padStart(18)).join('')}   new/baseline\n`);
for (let i = 0; i < cases.length; i += IMPLS.length) {
  const s = cases[i].s;
  const g = IMPLS.map((_, q) => median(cases[i + q].rates));
  out.write(`${s.label.padEnd(20)}${s.form.padEnd(5)}${`${s.m}x${s.k}x${s.n}`.padEnd(14)}${g.map((x) => x.toFixed(2).padStart(18)).join('')}   ${(g[2] / g[0]).toFixed(2)}x\n`);
}
if (json) process.stdout.write(JSON.stringify({ results }) + '\n');
