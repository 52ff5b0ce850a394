// Matrix-product speed on one thread: dptrain's WebAssembly SIMD kernels,
// the TypeScript reference kernels, and TensorFlow.js's wasm backend.
//
//   node dist/bench/matmul.js [--json] [--rounds N] [--no-tfjs]
//
// Shapes are MxKxN: C (M, N) = op(A) op(B) with the shared dimension K.
// Forms: nn  C = A B,  tn  C = A^T B (A stored (K, M)),  nt  C = A B^T (B stored (N, K)).
// Each number is the median over rounds of 2*M*N*K / (wall time per call);
// rounds alternate between the cases (see measureAll).
// tfjs runs in a child process: its wasm memory grows, and growing a memory
// slows every typed-array loop of the process after it (docs/design.md).
// --json prints, as the last line:
//   {"results":[{"model":"matmul","shape":"256x784x128","form":"nn","impl":"dptrain","gflops":38.1}, ...]}

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { uniform } from '../src/random/counter.js';
import { tsKernels, type Kernels } from '../src/tensor/kernels.js';
import { loadWasmKernels } from '../node/kernels/wasm-load.js';

type Impl = 'dptrain' | 'dptrain-ts' | 'tfjs-wasm';
type Form = 'nn' | 'tn' | 'nt';

interface Result {
  model: 'matmul';
  shape: string;
  form: Form;
  impl: Impl;
  gflops: number;
}

const SHAPES: ReadonlyArray<readonly [number, number, number]> = [[64, 784, 128], [256, 784, 128], [512, 512, 512]];
const FORMS: readonly Form[] = ['nn', 'tn', 'nt'];
const IMPLS: readonly Impl[] = ['dptrain', 'dptrain-ts', 'tfjs-wasm'];

const args = process.argv.slice(2);
const json = args.includes('--json');
const roundsArg = args.indexOf('--rounds');
const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : 9;
if (!Number.isInteger(rounds) || rounds < 1) {
  console.error('--rounds must be a positive integer');
  process.exit(2);
}
const ROUND_MS = 50; // each round repeats the call for at least this long

const shapeName = (m: number, k: number, n: number): string => `${m}x${k}x${n}`;

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

interface Case {
  shape: string;
  form: Form;
  impl: Impl;
  flops: number;
  run: () => void;
  reps: number; // calls per round
  rates: number[]; // GFLOP/s of each round
}

/**
 * Median GFLOP/s of each case. Rounds go round-robin over the cases, so a
 * burst of load from other processes on this shared machine lowers one round
 * of many cases rather than every round of one case.
 */
function measureAll(cases: Case[]): void {
  for (const c of cases) {
    // Warm up (lets V8 tier the wasm and JS code up) and calibrate.
    let reps = 0;
    const w0 = performance.now();
    while (reps < 3 || performance.now() - w0 < 2 * ROUND_MS) {
      c.run();
      reps++;
    }
    c.reps = Math.max(1, Math.ceil(ROUND_MS / ((performance.now() - w0) / reps)));
  }
  for (let r = 0; r < rounds; r++) {
    for (const c of cases) {
      const t0 = performance.now();
      for (let i = 0; i < c.reps; i++) c.run();
      c.rates.push(c.flops * c.reps / (performance.now() - t0) / 1e6);
    }
  }
}

function results(cases: Case[]): Result[] {
  return cases.map((c) => ({ model: 'matmul', shape: c.shape, form: c.form, impl: c.impl, gflops: median(c.rates) }));
}

function fill(arr: Float32Array, seed: number): Float32Array {
  for (let i = 0; i < arr.length; i++) arr[i] = uniform(seed, i) - 0.5;
  return arr;
}

function kernelCases(kernels: Kernels, impl: Impl, alloc: (n: number) => Float32Array): Case[] {
  const out: Case[] = [];
  for (const [m, k, n] of SHAPES) {
    const a = fill(alloc(m * k), 1), b = fill(alloc(k * n), 2), c = alloc(m * n);
    for (const form of FORMS) {
      const tA = form === 'tn', tB = form === 'nt';
      out.push({
        shape: shapeName(m, k, n), form, impl, flops: 2 * m * n * k, reps: 1, rates: [],
        run: () => kernels.gemm(tA, tB, m, n, k, a, b, c, false),
      });
    }
  }
  return out;
}

async function benchTfjs(): Promise<Result[]> {
  const tf = await import('@tensorflow/tfjs');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false); // one thread, like ours
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
  await tf.ready();
  const cases: Case[] = [];
  for (const [m, k, n] of SHAPES) {
    for (const form of FORMS) {
      const tA = form === 'tn', tB = form === 'nt';
      const a = tf.tensor2d(fill(new Float32Array(m * k), 1), tA ? [k, m] : [m, k]);
      const b = tf.tensor2d(fill(new Float32Array(k * n), 2), tB ? [n, k] : [k, n]);
      cases.push({
        shape: shapeName(m, k, n), form, impl: 'tfjs-wasm', flops: 2 * m * n * k, reps: 1, rates: [],
        run: () => {
          const c = tf.matMul(a, b, tA, tB);
          c.dataSync();
          c.dispose();
        },
      });
    }
  }
  measureAll(cases);
  return results(cases);
}

function tfjsInChild(): Result[] {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, [self, '--child-tfjs', '--rounds', String(rounds)], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    console.error(`tfjs child failed (status ${r.status}); its results are left out`);
    return [];
  }
  return (JSON.parse(last) as { results: Result[] }).results;
}

function printTable(results: Result[]): void {
  const pad = (s: string, w: number): string => s.padStart(w);
  console.log(`matmul, one thread, GFLOP/s (median of ${rounds} rounds); shape MxKxN`);
  console.log(pad('shape', 12) + pad('form', 6) + IMPLS.map((i) => pad(i, 14)).join(''));
  for (const [m, k, n] of SHAPES) {
    for (const form of FORMS) {
      const shape = shapeName(m, k, n);
      const cells = IMPLS.map((impl) => {
        const r = results.find((x) => x.shape === shape && x.form === form && x.impl === impl);
        return pad(r ? r.gflops.toFixed(2) : '-', 14);
      });
      console.log(pad(shape, 12) + pad(form, 6) + cells.join(''));
    }
  }
}

async function main(): Promise<void> {
  if (args.includes('--child-tfjs')) {
    console.log(JSON.stringify({ results: await benchTfjs() }));
    return;
  }
  const wk = loadWasmKernels();
  const cases = [
    ...kernelCases(wk, 'dptrain', (n) => wk.alloc(n)),
    ...kernelCases(tsKernels, 'dptrain-ts', (n) => new Float32Array(n)),
  ];
  measureAll(cases);
  const all = [...results(cases), ...(args.includes('--no-tfjs') ? [] : tfjsInChild())];
  for (const r of all) r.gflops = Math.round(r.gflops * 100) / 100;
  printTable(all);
  if (json) console.log(JSON.stringify({ results: all }));
}

await main();
