// Convolution speed on one thread: the WebAssembly kernels' two methods
// (direct kernels, and im2col + the gemm) and the TypeScript reference, on
// the two convolutions of the benchmark CNN (conv 8@5x5 on [1, 28, 28],
// conv 16@5x5 on [8, 12, 12]), against the gemm on the product im2col makes.
//
//   node dist/bench/conv.js [--json] [--rounds N] [--batch N ...] [--clock cpu|wall]
//
// Per layer and batch N (the samples of one call: a micro-shard):
//   forward   y = conv(x, W) + b                   2 O K N P flops
//   filter    dW += , db +=  (backward, dx skipped) 2 O K N P
//   backward  dW, db and dx                        4 O K N P
//   gemm      the forward's product as one gemm, (O, K) x (K, N P), from
//             an im2col matrix built beforehand (not timed)
// K = C kh kw, P = Ho Wo. GFLOP/s = flops / time, the median over rounds
// that go round-robin over the cases; time is the process's CPU time by
// default (other work on a shared machine then costs less of the figure),
// the wall clock with --clock wall. --json prints, last,
//   {"results":[{"model":"conv","layer","batch","op","impl","gflops"}, ...]}
import { windowGeometry, type WindowGeometry } from '../src/nn/conv-geometry.js';
import { uniform } from '../src/random/counter.js';
import type { ConvKernels } from '../src/tensor/conv-kernels.js';
import { tsConvKernels } from '../src/tensor/conv-ts.js';
import { loadWasmKernels } from '../node/kernels/wasm-load.js';

type Impl = 'direct' | 'im2col' | 'ts' | 'gemm';
type Op = 'forward' | 'filter' | 'backward';
interface Result { model: 'conv'; layer: string; batch: number; op: Op; impl: Impl; gflops: number }
interface Case extends Omit<Result, 'gflops'> { flops: number; run: () => void; reps: number; rates: number[] }

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
const rounds = Number(opt('--rounds', '7'));
const clock = opt('--clock', 'cpu');
if (clock !== 'cpu' && clock !== 'wall') {
  console.error('--clock must be cpu or wall');
  process.exit(2);
}
/** Milliseconds of the chosen clock. */
const now = clock === 'cpu' ? () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; } : () => performance.now();
const batches = args.flatMap((a, i) => (args[i - 1] === '--batch' ? [Number(a)] : []));
if (batches.length === 0) batches.push(8, 64);
if (!Number.isInteger(rounds) || rounds < 1 || batches.some((b) => !Number.isInteger(b) || b < 1)) {
  console.error('usage: node dist/bench/conv.js [--json] [--rounds N] [--batch N ...]');
  process.exit(2);
}
const ROUND_MS = 60;

const LAYERS: { name: string; g: WindowGeometry }[] = [
  { name: 'conv1 8@5x5 [1,28,28]', g: windowGeometry('conv1', [1, 28, 28], 8, 5, 1, 'valid', 1) },
  { name: 'conv2 16@5x5 [8,12,12]', g: windowGeometry('conv2', [8, 12, 12], 16, 5, 1, 'valid', 1) },
];

function fill(a: Float32Array, seed: number): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = uniform(seed, i) - 0.5;
  return a;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const wk = loadWasmKernels();
const cases: Case[] = [];

function convCases(impl: Impl, k: ConvKernels, alloc: (n: number) => Float32Array, before: () => void): void {
  for (const { name, g } of LAYERS) {
    for (const N of batches) {
      const K = g.C * g.kh * g.kw, P = g.Ho * g.Wo, flops = 2 * g.O * K * N * P;
      const x = fill(alloc(N * g.C * g.H * g.W), 1), W = fill(alloc(g.O * K), 2), b = fill(alloc(g.O), 3);
      const y = alloc(N * g.O * P), dy = fill(alloc(N * g.O * P), 4), dx = alloc(N * g.C * g.H * g.W);
      const dW = alloc(g.O * K), db = alloc(g.O);
      before();
      const keep = alloc(k.convKeepLength(g, N)), scratch = alloc(k.convScratchLength(g, N));
      const forward = () => { before(); k.convForward(y, x, W, b, g, N, keep, scratch); };
      forward();
      const base = { model: 'conv' as const, layer: name, batch: N, impl, reps: 1 };
      cases.push({ ...base, rates: [], op: 'forward', flops, run: forward });
      cases.push({ ...base, rates: [], op: 'filter', flops, run: () => { before(); k.convBackward(null, dW, db, dy, x, W, g, N, keep, scratch); } });
      cases.push({ ...base, rates: [], op: 'backward', flops: 2 * flops, run: () => { before(); k.convBackward(dx, dW, db, dy, x, W, g, N, keep, scratch); } });
    }
  }
}

function gemmCases(): void {
  for (const { name, g } of LAYERS) {
    for (const N of batches) {
      const K = g.C * g.kh * g.kw, NP = N * g.Ho * g.Wo;
      const W = fill(wk.alloc(g.O * K), 2), col = fill(wk.alloc(K * NP), 5), Y = wk.alloc(g.O * NP);
      cases.push({
        model: 'conv', layer: name, batch: N, impl: 'gemm', op: 'forward', flops: 2 * g.O * K * NP, reps: 1, rates: [],
        run: () => wk.gemm(false, false, g.O, NP, K, W, col, Y, false),
      });
    }
  }
}

convCases('direct', wk, (n) => wk.alloc(n), () => wk.setConvMethod('direct'));
convCases('im2col', wk, (n) => wk.alloc(n), () => wk.setConvMethod('im2col'));
convCases('ts', tsConvKernels, (n) => new Float32Array(n), () => {});
gemmCases();

for (const c of cases) {
  let reps = 0;
  const t0 = performance.now();
  while (reps < 2 || performance.now() - t0 < 2 * ROUND_MS) { c.run(); reps++; }
  c.reps = Math.max(1, Math.ceil(ROUND_MS / ((performance.now() - t0) / reps)));
}
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    const t0 = now();
    for (let i = 0; i < c.reps; i++) c.run();
    c.rates.push(c.flops * c.reps / (now() - t0) / 1e6);
  }
}

const results: Result[] = cases.map((c) => ({
  model: 'conv', layer: c.layer, batch: c.batch, op: c.op, impl: c.impl, gflops: Math.round(median(c.rates) * 100) / 100,
}));
const impls: Impl[] = ['direct', 'im2col', 'ts', 'gemm'];
const out = json ? (s: string) => process.stderr.write(s + '\n') : (s: string) => console.log(s);
out(`convolution, one thread, GFLOP/s per ${clock === 'cpu' ? 'CPU' : 'wall-clock'} second (median of ${rounds} rounds); gemm = the forward's product alone`);
out('layer'.padEnd(26) + 'batch'.padStart(6) + 'op'.padStart(10) + impls.map((i) => i.padStart(10)).join(''));
for (const { name } of LAYERS) {
  for (const N of batches) {
    for (const op of ['forward', 'filter', 'backward'] as Op[]) {
      const cells = impls.map((impl) => {
        const r = results.find((x) => x.layer === name && x.batch === N && x.op === op && x.impl === impl);
        return (r ? r.gflops.toFixed(2) : '-').padStart(10);
      });
      out(name.padEnd(26) + String(N).padStart(6) + op.padStart(10) + cells.join(''));
    }
  }
}
if (json) console.log(JSON.stringify({ results }));
