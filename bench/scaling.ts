// `npm run bench:scaling`: training samples/s with --workers 0, 1 and 2 on
// the MNIST MLP (batch 256) and the row LSTM (batch 64), the 2-vs-0 ratio,
// and the coordinator's own share of a step (broadcast = publishing the
// weights version and dispatching the ranges; reduction = combining the
// partial sums in the tree order; the SGD step).
//
//   node dist/bench/scaling.js [--json] [--only mlp,lstm] [--workers 0,1,2] [--rounds R] [--steps-mlp N] [--steps-lstm N]
//                              [--kernels wasm|ts] [--no-ceiling]
//
// After each model, the machine's ceiling: two --workers 0 runs in two
// separate processes at once (nothing shared, no synchronisation), their
// summed samples/s over one alone; no 2-worker scheme can beat it here.
//
// Every engine of a model is built first (its threads started and warmed
// up), then the configurations take turns for `rounds` short rounds. The
// figure of a configuration is its best round (the least disturbed: other
// work on the machine only ever slows a round down); the median is printed
// next to it. With --json the last line of stdout is one object:
// {"results": [{"model", "batch", "workers", "samplesPerSec"}], "ratios", "ceilings", "coordinator"}.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readConfigFile, type TrainConfig } from '../coordinator/config.js';
import { loadTrainData } from '../coordinator/data/load.js';
import type { GradientEngine } from '../coordinator/engine.js';
import { chooseEngine } from '../coordinator/engines.js';
import { buildTrainModel, createStepper, type Stepper } from '../coordinator/trainer.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { gradLength } from '../src/train/step.js';
import { parseKernelKind, setupKernels } from '../worker/kernels-setup.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Bench { model: 'mlp' | 'lstm'; config: string; batch: number; steps: number }

const BENCHES: Bench[] = [
  { model: 'mlp', config: 'examples/mnist-mlp.json', batch: 256, steps: Number(arg('--steps-mlp') ?? 60) },
  { model: 'lstm', config: 'examples/mnist-lstm.json', batch: 64, steps: Number(arg('--steps-lstm') ?? 10) },
];
const WORKERS = (arg("--workers") ?? "0,1,2").split(",").map(Number);
const ROUNDS = Number(arg('--rounds') ?? 8);
const WARMUP = 3;
const json = process.argv.includes('--json');
const only = arg('--only')?.split(',');
// The trainer's kernels (wasm unless --kernels ts), in this thread and, through the engine, in the workers.
const kernelKind = parseKernelKind(arg('--kernels') ?? 'wasm');
const kernelName = setupKernels(kernelKind);

interface Runner {
  workers: number;
  engine: GradientEngine;
  stepper: Stepper;
  sum: Float32Array;
  step: number;
}

interface Round { seconds: number; dispatchMs: number; combineMs: number; applyMs: number }

async function runSteps(r: Runner, steps: number): Promise<Round> {
  const before = r.engine.stats?.();
  let applyMs = 0;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    // Stay inside the first epoch's permutation pattern; the figures do not depend on which samples.
    const step = r.step++ % r.stepper.lastStep;
    await r.engine.batchGradient(r.stepper.job(step), r.sum);
    const a = performance.now();
    r.stepper.apply(step, r.sum);
    applyMs += performance.now() - a;
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = r.engine.stats?.();
  return {
    seconds, applyMs: applyMs / steps,
    dispatchMs: before && after ? (after.dispatchMs - before.dispatchMs) / steps : 0,
    combineMs: before && after ? (after.combineMs - before.combineMs) / steps : 0,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const results: { model: string; batch: number; workers: number; samplesPerSec: number }[] = [];
const coordinator: Record<string, unknown>[] = [];
const ratios: Record<string, number> = {};
const log = (line: string) => process.stderr.write(line + '\n');

/** Best samples/s of `--workers 0` rounds in this process (the child side of the machine-ceiling measurement). */
async function soloRate(b: Bench, config: TrainConfig, data: Awaited<ReturnType<typeof loadTrainData>>): Promise<number> {
  const choice = chooseEngine(config, 0, log);
  const model = buildTrainModel(config);
  const stepper = createStepper(config, model, data.train.n);
  const runner: Runner = { workers: 0, engine: await choice.create(model, data, b.batch), stepper, sum: allocFloats(gradLength(model)), step: 0 };
  await runSteps(runner, WARMUP);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) best = Math.min(best, (await runSteps(runner, b.steps)).seconds);
  return (b.batch * b.steps) / best;
}

/**
 * The machine's own ceiling: two copies of the one-thread run (--workers 0)
 * in two separate processes at the same time, nothing shared. Their summed
 * rate over one copy alone is the best any 2-worker scheme could reach here.
 */
function twoProcesses(model: string): Promise<number[]> {
  const self = fileURLToPath(import.meta.url);
  const argv = [self, '--child-solo', model, '--rounds', String(ROUNDS), '--steps-mlp', String(BENCHES[0].steps), '--steps-lstm', String(BENCHES[1].steps), '--kernels', kernelKind];
  return Promise.all([0, 1].map(() => new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Number(out.trim().split('\n').pop())) : reject(new Error(`scaling: solo child exited with ${code}`))));
  })));
}

const childSolo = arg('--child-solo');
if (childSolo !== undefined) {
  const b = BENCHES.find((x) => x.model === childSolo)!;
  const config: TrainConfig = { ...readConfigFile(`${ROOT}${b.config}`), batchSize: b.batch, stepTimeoutMs: 0 };
  console.log(await soloRate(b, config, await loadTrainData(config.data, { cacheDir: `${ROOT}.cache/dptrain` })));
  process.exit(0);
}

const ceilings: Record<string, number> = {};
for (const b of BENCHES.filter((x) => only === undefined || only.includes(x.model))) {
  const config: TrainConfig = { ...readConfigFile(`${ROOT}${b.config}`), batchSize: b.batch, stepTimeoutMs: 0 };
  const data = await loadTrainData(config.data, { cacheDir: `${ROOT}.cache/dptrain` });
  const runners: Runner[] = [];
  for (const workers of WORKERS) {
    const choice = chooseEngine(config, workers, log);
    const model = buildTrainModel(config, choice.allocParams);
    const prepared = choice.prepare(data);
    const stepper = createStepper(config, model, prepared.train.n);
    const engine = await choice.create(model, prepared, b.batch);
    const runner: Runner = { workers, engine, stepper, sum: allocFloats(gradLength(model)), step: 0 };
    await runSteps(runner, WARMUP);
    runners.push(runner);
  }
  const rounds = new Map<number, Round[]>(WORKERS.map((w) => [w, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const runner of runners) rounds.get(runner.workers)!.push(await runSteps(runner, b.steps));
  }
  for (const runner of runners) await runner.engine.close();

  const rate: Record<number, number> = {};
  if (!json) console.log(`${b.model}, batch ${b.batch}, ${config.microShards ?? Math.min(16, b.batch)} micro-shards, ${kernelName} kernels (best of ${ROUNDS} rounds of ${b.steps} steps):`);
  for (const w of WORKERS) {
    const rs = rounds.get(w)!;
    const best = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
    const samplesPerSec = (b.batch * b.steps) / best.seconds;
    const medianRate = median(rs.map((x) => (b.batch * b.steps) / x.seconds));
    const stepMs = (1000 * best.seconds) / b.steps;
    const { dispatchMs, combineMs, applyMs } = best;
    const ownMs = dispatchMs + combineMs + applyMs;
    rate[w] = samplesPerSec;
    results.push({ model: b.model, batch: b.batch, workers: w, samplesPerSec: Math.round(samplesPerSec * 10) / 10 });
    coordinator.push({ model: b.model, workers: w, stepMs, dispatchMs, combineMs, applyMs, share: ownMs / stepMs, medianSamplesPerSec: medianRate });
    if (!json) {
      console.log(`  --workers ${w}: ${samplesPerSec.toFixed(0).padStart(6)} samples/s (median ${medianRate.toFixed(0)}), ${stepMs.toFixed(2).padStart(7)} ms/step; ` +
        `coordinator ${ownMs.toFixed(2)} ms/step (${(100 * ownMs / stepMs).toFixed(1)}%: broadcast ${dispatchMs.toFixed(2)}, reduction ${combineMs.toFixed(2)}, SGD step ${applyMs.toFixed(2)})`);
    }
  }
  ratios[b.model] = rate[2] / rate[0];
  if (!json) console.log(`  2 workers vs 0: ${ratios[b.model].toFixed(2)}x (goal 1.8x)`);
  if (!process.argv.includes('--no-ceiling') && rate[0] !== undefined) {
    const pair = await twoProcesses(b.model);
    ceilings[b.model] = (pair[0] + pair[1]) / rate[0];
    if (!json) {
      console.log(`  machine ceiling: two separate --workers 0 processes at once: ${pair.map((x) => x.toFixed(0)).join(' + ')} samples/s = ` +
        `${ceilings[b.model].toFixed(2)}x one alone; 2 workers reach ${(100 * ratios[b.model] / ceilings[b.model]).toFixed(0)}% of it`);
    }
  }
}

if (json) console.log(JSON.stringify({ results, ratios, ceilings, coordinator }));
