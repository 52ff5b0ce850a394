// `npm run bench`: training speed on ONE thread, dptrain against
// TensorFlow.js 4.22 (cpu and wasm backends), on real MNIST.
//
//   node dist/bench/bench.js [--rounds N] [--seconds S] [--only mlp|lstm|cnn|matmul]
//                            [--micro-shards K] [--tfjs-loop fit|minimize]
//                            [--min-steps N] [--clock wall|cpu] [--dense-kernels]
//                            [--no-matmul] [--json]
//
// Cases: the MLP 784-128(relu)-10 at batch 64 and 256, and the row LSTM
// (28 steps of 28 pixels, LSTM 128, dense 10) at batch 64; softmax
// cross-entropy, plain SGD with lr 0.05 (bench/bench-worker.ts has the
// details); and the fixed CNN of issue 22 (conv 8@5x5 + ReLU, max pool 2,
// conv 16@5x5 + ReLU, max pool 2, flatten, dense 10: 5,994 parameters) at
// batch 64 with Adam: `cnn` times training steps, `cnn-predict` the forward
// pass, with PyTorch 1.13 on one thread beside them where Debian's
// python3-torch is installed (bench/torch_cnn.py). TF.js's wasm backend
// cannot train the CNN (no Conv2DBackpropFilter kernel): its entry says so
// ({"samplesPerSec": null, "error"}). dptrain runs with K = --micro-shards micro-shards per batch
// (default 1: the whole batch in one forward/backward, as TF.js does it):
// `dptrain` with its WebAssembly SIMD kernels (what the trainer uses),
// `dptrain-ts` with the pure-TypeScript reference kernels; --dense-kernels
// turns off the latter's exact skipping of zeros (src/tensor/kernels.ts),
// which is what makes the TS MLP fast on MNIST's mostly-zero pixels.
//
// Then the matrix products (bench/matmul.ts, in a process of its own):
// GFLOP/s of 64x784x128, 256x784x128 and 512x512x512 in the three forms,
// dptrain (wasm), dptrain-ts and TF.js wasm's tf.matMul; its entries
// {"model": "matmul", "shape", "form", "impl", "gflops"} join the results.
//
// Method: every measurement is a fresh child process (child_process.fork of
// dist/bench/bench-worker.js), so no implementation shares a V8 isolate, a JIT
// state or a WebAssembly memory with another. Rounds are interleaved (round r
// runs every case's dptrain, tfjs-cpu, tfjs-wasm in turn, then round r+1), each
// child warms up and then times a window of whole steps; the table quotes the
// MEDIAN over rounds. TF.js's cpu backend trains the LSTM at a few dozen
// samples per second, so its windows are a few steps long (at least --min-steps).
//
// Clocks: each window is timed by the wall clock and by the CPU time of the
// child process (bench-worker.ts). The table gives both; "samplesPerSec" in
// the JSON is per wall-clock second unless --clock cpu. When other work
// shares the machine, the wall-clock figures drop with whatever else runs;
// the CPU-time ones measure the code's own speed more steadily.
//
// Output: a table (stdout; stderr with --json) and, with --json, one last
// stdout line {"results": [{"model", "batch", "impl", "samplesPerSec"}, ...,
// {"model": "matmul", "shape", "form", "impl", "gflops"}, ...]}.
import { fork, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BenchImpl, BenchModel, TfjsLoop, WorkerResult, WorkerTask } from './bench-worker.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKER = fileURLToPath(new URL('./bench-worker.js', import.meta.url));
const MATMUL = fileURLToPath(new URL('./matmul.js', import.meta.url));

interface MatmulResult { model: 'matmul'; shape: string; form: 'nn' | 'tn' | 'nt'; impl: string; gflops: number }

/** The matrix-product table and entries of dist/bench/matmul.js (a process of its own, its tfjs in another). */
function runMatmul(): { table: string; results: MatmulResult[] } {
  const r = spawnSync(process.execPath, [MATMUL, '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const out = r.stdout.trim().split('\n');
  const last = out.pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) throw new Error(`bench: dist/bench/matmul.js failed (status ${r.status})`);
  return { table: out.join('\n'), results: (JSON.parse(last) as { results: MatmulResult[] }).results };
}

interface Case { model: BenchModel; batch: number }
const CASES: Case[] = [
  { model: 'mlp', batch: 64 },
  { model: 'mlp', batch: 256 },
  { model: 'lstm', batch: 64 },
  { model: 'cnn', batch: 64 },
  { model: 'cnn-predict', batch: 64 },
];
const IMPLS: BenchImpl[] = ['dptrain', 'dptrain-ts', 'tfjs-cpu', 'tfjs-wasm'];
/** PyTorch runs beside the CNN cases (bench/torch_cnn.py) where Debian's python3-torch is installed. */
const TORCH_MODELS = new Set<BenchModel>(['cnn', 'cnn-predict']);
const torchFound = spawnSync(process.env.DPTRAIN_PYTHON ?? '/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const implsOf = (c: Case): BenchImpl[] => (TORCH_MODELS.has(c.model) && torchFound ? [...IMPLS, 'pytorch'] : IMPLS);

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\nusage: node dist/bench/bench.js [--rounds N] [--seconds S] [--only mlp|lstm|cnn|matmul] [--micro-shards K] [--tfjs-loop fit|minimize] [--min-steps N] [--clock wall|cpu] [--dense-kernels] [--no-matmul] [--json]\n`);
  process.exit(2);
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`${name} needs a value`);
  return v;
}

function numberOption(args: string[], name: string, fallback: number, integer: boolean): number {
  const raw = option(args, name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!(v > 0) || (integer && !Number.isInteger(v))) usage(`${name} must be a positive ${integer ? 'integer' : 'number'}, got '${raw}'`);
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function runChild(task: WorkerTask): Promise<WorkerResult> {
  return new Promise((resolve, reject) => {
    const child = fork(WORKER, [JSON.stringify(task)], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let result: WorkerResult | undefined;
    let stderr = '';
    child.stderr!.on('data', (d) => { stderr += d; });
    child.on('message', (m) => { result = m as WorkerResult; });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (result !== undefined) resolve(result);
      else reject(new Error(`${task.impl} ${task.model} batch ${task.batch}: the child exited with code ${code} and no result\n${stderr}`));
    });
  });
}

const args = process.argv.slice(2);
const known = new Set(['--rounds', '--seconds', '--only', '--micro-shards', '--tfjs-loop', '--min-steps', '--clock', '--dense-kernels', '--no-matmul', '--json']);
const flags = new Set(['--json', '--dense-kernels', '--no-matmul']);
for (let i = 0; i < args.length; i++) {
  if (!known.has(args[i])) usage(`unknown argument '${args[i]}'`);
  if (!flags.has(args[i])) i++;
}
const denseKernels = args.includes('--dense-kernels');
const json = args.includes('--json');
const rounds = numberOption(args, '--rounds', 3, true);
const seconds = numberOption(args, '--seconds', 3, false);
const microShards = numberOption(args, '--micro-shards', 1, true);
const minSteps = numberOption(args, '--min-steps', 2, true);
const only = option(args, '--only');
if (only !== undefined && only !== 'mlp' && only !== 'lstm' && only !== 'cnn' && only !== 'matmul') usage(`--only must be mlp, lstm, cnn or matmul, got '${only}'`);
const withMatmul = !args.includes('--no-matmul') && (only === undefined || only === 'matmul');
const tfjsLoop = (option(args, '--tfjs-loop') ?? 'fit') as TfjsLoop;
if (tfjsLoop !== 'fit' && tfjsLoop !== 'minimize') usage(`--tfjs-loop must be fit or minimize, got '${tfjsLoop}'`);
const clock = option(args, '--clock') ?? 'wall';
if (clock !== 'wall' && clock !== 'cpu') usage(`--clock must be wall or cpu, got '${clock}'`);
const cases = CASES.filter((c) => only === undefined || c.model === only || (only === 'cnn' && c.model === 'cnn-predict'));
for (const c of cases) {
  if (microShards > c.batch) usage(`--micro-shards ${microShards} is more than the batch size ${c.batch}`);
}

const log = (line: string) => process.stderr.write(line + '\n');
log(`bench: ${rounds} rounds, ${seconds} s windows, dptrain microShards ${microShards}${denseKernels ? ' (dense kernels)' : ''}, TF.js ${tfjsLoop === 'fit' ? 'model.trainOnBatch' : 'optimizer.minimize'}`);

const key = (c: Case, impl: BenchImpl) => `${c.model}/${c.batch}/${impl}`;
const rates = new Map<string, number[]>();    // per wall-clock second
const cpuRates = new Map<string, number[]>(); // per CPU second
const details = new Map<string, string>();
const errors = new Map<string, string>(); // an implementation that cannot run a case (TF.js wasm cannot train the CNN)
const started = performance.now();
for (let r = 0; r < rounds; r++) {
  for (const c of cases) {
    for (const impl of implsOf(c)) {
      const task: WorkerTask = {
        model: c.model, batch: c.batch, impl, seconds,
        warmupSeconds: Math.min(1.5, seconds / 2), minSteps, microShards, denseKernels, tfjsLoop,
      };
      const res = await runChild(task);
      const k = key(c, impl);
      if (res.error !== undefined) {
        errors.set(k, res.error);
        log(`round ${r + 1}/${rounds}  ${c.model.padEnd(4)} batch ${String(c.batch).padStart(3)}  ${impl.padEnd(9)}  cannot run: ${res.error}`);
        continue;
      }
      rates.set(k, [...(rates.get(k) ?? []), res.samplesPerSec]);
      cpuRates.set(k, [...(cpuRates.get(k) ?? []), res.samplesPerCpuSec]);
      details.set(k, res.detail);
      log(`round ${r + 1}/${rounds}  ${c.model.padEnd(4)} batch ${String(c.batch).padStart(3)}  ${impl.padEnd(9)}  ${res.samplesPerSec.toFixed(1).padStart(8)} samples/s, ${res.samplesPerCpuSec.toFixed(1).padStart(8)} per CPU s  (${res.steps} steps in ${res.seconds.toFixed(2)} s, CPU ${res.cpuSeconds.toFixed(2)} s, loss ${res.loss.toFixed(3)}; ${res.detail})`);
    }
  }
}
log(`bench: ${((performance.now() - started) / 1000).toFixed(0)} s`);

type BenchResult = { model: BenchModel; batch: number; impl: BenchImpl; samplesPerSec: number | null; error?: string };
const results: (BenchResult | MatmulResult)[] = [];
const lines: string[] = [];
const col = (s: string) => s.padStart(20);
const tableImpls: BenchImpl[] = cases.some((c) => implsOf(c).includes('pytorch')) ? [...IMPLS, 'pytorch'] : IMPLS;
for (const [title, source] of [['per wall-clock second', rates], ['per CPU second of the process', cpuRates]] as const) {
  lines.push(`samples ${title}, one thread, median of ${rounds} rounds (min-max); dptrain with microShards ${microShards}${denseKernels ? ', dptrain-ts with dense kernels' : ''}`);
  lines.push('model        batch' + tableImpls.map(col).join('') + '  dptrain/tfjs-cpu  dptrain/tfjs-wasm  dptrain-ts/tfjs-cpu  dptrain-ts/tfjs-wasm  dptrain/pytorch');
  for (const c of cases) {
    const med: Record<string, number> = {};
    const cells: string[] = [];
    for (const impl of tableImpls) {
      const xs = source.get(key(c, impl));
      const error = errors.get(key(c, impl));
      if (xs === undefined) {
        med[impl] = NaN;
        cells.push(col(error !== undefined ? 'cannot run' : '-'));
        if (error !== undefined && source === (clock === 'cpu' ? cpuRates : rates)) results.push({ model: c.model, batch: c.batch, impl, samplesPerSec: null, error });
        continue;
      }
      med[impl] = median(xs);
      if (source === (clock === 'cpu' ? cpuRates : rates)) {
        results.push({ model: c.model, batch: c.batch, impl, samplesPerSec: Math.round(med[impl] * 10) / 10 });
      }
      cells.push(col(`${med[impl].toFixed(0)} (${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))})`));
    }
    const ratio = (a: string, b: string, w: number) => (Number.isFinite(med[a] / med[b]) ? `${(med[a] / med[b]).toFixed(2)}x` : '-').padStart(w);
    lines.push(`${c.model.padEnd(11)}  ${String(c.batch).padStart(5)}${cells.join('')}${ratio('dptrain', 'tfjs-cpu', 18)}${ratio('dptrain', 'tfjs-wasm', 19)}` +
      `${ratio('dptrain-ts', 'tfjs-cpu', 21)}${ratio('dptrain-ts', 'tfjs-wasm', 22)}${ratio('dptrain', 'pytorch', 17)}`);
  }
  for (const [k, e] of errors) lines.push(`  ${k}: ${e}`);
  lines.push('');
}
if (withMatmul) {
  log('bench: matrix products (dist/bench/matmul.js)');
  const matmul = runMatmul();
  results.push(...matmul.results);
  lines.push(matmul.table, '');
}
const table = lines.join('\n');
if (json) {
  process.stderr.write(table);
  process.stdout.write(JSON.stringify({ results }) + '\n');
} else {
  process.stdout.write(table);
}
