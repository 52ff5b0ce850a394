// `npm run bench:scaling`: training samples/s with --workers 0, 1 and 2 on
// the MNIST MLP (batch 256), the row LSTM (batch 64) and the CNN of
// examples/mnist-cnn.json (batch 64, Adam), the 2-vs-0 ratio,
// the default MLP config (examples/mnist-mlp.json as it is: batch 32) with
// --workers 0 and with the default worker count (no --workers: threads or
// the coordinator's thread, whichever the run measures faster; timed after
// its choice), then every other example config as it is, --workers 0
// against the default (which must never lose), and the coordinator's own
// share of a step (broadcast = publishing the weights version and
// dispatching the ranges; reduction = combining the partial sums in the tree
// order; the SGD step).
//
//   node dist/bench/scaling.js [--json] [--only mlp,lstm,cnn,default,examples] [--workers 0,1,2] [--rounds R]
//                              [--steps-mlp N] [--steps-lstm N] [--steps-cnn N] [--steps-default N] [--steps-examples N]
//                              [--kernels wasm|ts] [--no-ceiling] [--warmup-ms MS]
//
// After the MLP and the LSTM, the machine's ceiling: two --workers 0 runs in
// two separate processes at once (nothing shared, no synchronisation), their
// summed samples/s over one alone; no 2-worker scheme can beat it here.
//
// Every engine of a model is built first (its threads started and warmed
// up: --warmup-ms of untimed steps, 3 s by default, for the JIT of every
// thread), then the configurations take turns for `rounds` short rounds
// (the example configs': about ROUND_MS each). The figure of a
// configuration is its best round (the least disturbed: other work on the
// machine only ever slows a round down); the median is printed next to it.
// With --json the last line of stdout is one object:
// {"results": [{"model", "batch", "workers", "samplesPerSec"}], "ratios", "ceilings", "coordinator"}
// (the default config's entries are model "mlp-default", the other example
// configs' "default:<name>"; a default engine's `workers` is "default", with
// `chose`: the threads it computes on, 0 for the coordinator's thread;
// ratios: "mlp", "lstm", "cnn", "mlp-default" and "default:<name>", each the last
// configuration's over --workers 0).
import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfigFile, type TrainConfig } from '../coordinator/run/config.js';
import { loadTrainData } from '../coordinator/data/load.js';
import { chooseEngine } from '../coordinator/engines/choose.js';
import { buildTrainModel, createStepper } from '../coordinator/run/stepper.js';
import { median, runSteps, warmUp, type Round, type Runner, type Workers } from './rounds.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { gradLength } from '../src/train/step.js';
import { parseKernelKind, setupKernels } from '../node/kernels/setup.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A configuration to time: its config file at `batch` (undefined: the file's own), `steps` per round (undefined: about ROUND_MS of them). */
interface Bench { model: string; only: string; config: string; batch?: number; steps?: number; workers: Workers[]; ceiling: boolean; goal: number }

const WORKERS = (arg('--workers') ?? '0,1,2').split(',').map(Number);
const BENCHES: Bench[] = [
  { model: 'mlp', only: 'mlp', config: 'examples/mnist-mlp.json', batch: 256, steps: Number(arg('--steps-mlp') ?? 60), workers: WORKERS, ceiling: true, goal: 1.8 },
  { model: 'lstm', only: 'lstm', config: 'examples/mnist-lstm.json', batch: 64, steps: Number(arg('--steps-lstm') ?? 10), workers: WORKERS, ceiling: true, goal: 1.85 },
  { model: 'cnn', only: 'cnn', config: 'examples/mnist-cnn.json', batch: 64, steps: Number(arg('--steps-cnn') ?? 8), workers: WORKERS, ceiling: true, goal: 1.85 },
  { model: 'mlp-default', only: 'default', config: 'examples/mnist-mlp.json', batch: 32, steps: Number(arg('--steps-default') ?? 240), workers: [0, 'default'], ceiling: false, goal: 1.3 },
  // Every other example config as it is: the default worker count must never lose to --workers 0.
  ...['mnist-mlp-bn-dropout', 'mnist-lstm', 'mnist-gru', 'csv-blobs'].map((name): Bench => ({
    model: `default:${name}`, only: 'examples', config: `examples/${name}.json`, steps: optionalNumber('--steps-examples'), workers: [0, 'default'], ceiling: false, goal: 1,
  })),
];
/** A round of an example config lasts about this long (its --workers 0 step time, measured while warming up). */
const ROUND_MS = 250;

function optionalNumber(name: string): number | undefined {
  const v = arg(name);
  return v === undefined ? undefined : Number(v);
}
const ROUNDS = Number(arg('--rounds') ?? 8);
/** Untimed steps (and milliseconds, --warmup-ms) every engine runs before its rounds: see warmUp. */
const WARMUP = 3;
const WARMUP_MS = Number(arg('--warmup-ms') ?? 3000);
/** Untimed steps at the start of every round (see runSteps). */
const LEAD = 3;
const json = process.argv.includes('--json');
const only = arg('--only')?.split(',');
// The trainer's kernels (wasm unless --kernels ts), in this thread and, through the engine, in the workers.
const kernelKind = parseKernelKind(arg('--kernels') ?? 'wasm');
const kernelName = setupKernels(kernelKind);

const results: { model: string; batch: number; workers: Workers; chose?: number; samplesPerSec: number }[] = [];
const coordinator: Record<string, unknown>[] = [];
const ratios: Record<string, number> = {};
const log = (line: string) => process.stderr.write(line + '\n');

/** Best samples/s of `--workers 0` rounds in this process (the child side of the machine-ceiling measurement). */
async function soloRate(steps: number, config: TrainConfig, data: Awaited<ReturnType<typeof loadTrainData>>): Promise<number> {
  const batch = config.batchSize;
  const choice = chooseEngine(config, 0, log);
  const model = buildTrainModel(config);
  const stepper = createStepper(config, model, data.train.n);
  const runner: Runner = { workers: 0, engine: await choice.create(model, data, batch), stepper, sum: allocFloats(gradLength(model)), step: 0 };
  await warmUp(runner, WARMUP_MS, WARMUP);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) best = Math.min(best, (await runSteps(runner, steps, LEAD)).seconds);
  return (batch * steps) / best;
}

/**
 * The machine's own ceiling: two copies of the one-thread run (--workers 0)
 * in two separate processes at the same time, nothing shared. Their summed
 * rate over one copy alone is the best any 2-worker scheme could reach here.
 */
function twoProcesses(model: string): Promise<number[]> {
  const self = fileURLToPath(import.meta.url);
  const argv = [self, '--child-solo', model, '--rounds', String(ROUNDS), '--warmup-ms', String(WARMUP_MS), '--steps-mlp', String(BENCHES[0].steps), '--steps-lstm', String(BENCHES[1].steps), '--kernels', kernelKind];
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
  // Only the MLP and the LSTM have a ceiling: their batch and steps are set.
  const b = BENCHES.find((x) => x.model === childSolo)!;
  const config: TrainConfig = { ...readConfigFile(`${ROOT}${b.config}`), batchSize: b.batch!, stepTimeoutMs: 0 };
  console.log(await soloRate(b.steps!, config, await loadTrainData(config.data, { cacheDir: `${ROOT}.cache/dptrain`, baseDir: dirname(`${ROOT}${b.config}`) })));
  process.exit(0);
}

const ceilings: Record<string, number> = {};
for (const b of BENCHES.filter((x) => only === undefined || only.includes(x.only))) {
  const file = readConfigFile(`${ROOT}${b.config}`);
  const batch = b.batch ?? file.batchSize;
  const config: TrainConfig = { ...file, batchSize: batch, stepTimeoutMs: 0 };
  const data = await loadTrainData(config.data, { cacheDir: `${ROOT}.cache/dptrain`, baseDir: dirname(`${ROOT}${b.config}`) });
  const runners: Runner[] = [];
  for (const workers of b.workers) {
    const choice = chooseEngine(config, workers === 'default' ? 'auto' : workers, log);
    const model = buildTrainModel(config, choice.allocParams);
    const prepared = choice.prepare(data);
    const stepper = createStepper(config, model, prepared.train.n, choice.allocParams);
    const engine = await choice.create(model, prepared, batch);
    const runner: Runner = { workers, engine, stepper, sum: allocFloats(gradLength(model)), step: 0 };
    // The default engine first measures both ways (auto-engine.ts); the rounds time what it chose.
    await warmUp(runner, WARMUP_MS, WARMUP);
    while (engine.choice !== undefined && engine.choice() === undefined) await runSteps(runner, 10);
    runners.push(runner);
  }
  // Rounds of about ROUND_MS on --workers 0 where the bench does not say how many steps.
  const steps = b.steps ?? Math.max(5, Math.round(ROUND_MS / ((1000 * (await runSteps(runners[0], 10)).seconds) / 10)));
  const rounds = new Map<Workers, Round[]>(b.workers.map((w) => [w, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const runner of runners) rounds.get(runner.workers)!.push(await runSteps(runner, steps, LEAD));
  }
  const chose = new Map(runners.map((r) => [r.workers, r.engine.choice?.()]));
  for (const runner of runners) await runner.engine.close();

  const rate = new Map<Workers, number>();
  if (!json) console.log(`${b.model}, batch ${batch}, ${config.microShards ?? Math.min(16, batch)} micro-shards, ${kernelName} kernels (best of ${ROUNDS} rounds of ${steps} steps):`);
  for (const w of b.workers) {
    const rs = rounds.get(w)!;
    const best = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
    const samplesPerSec = (batch * steps) / best.seconds;
    const medianRate = median(rs.map((x) => (batch * steps) / x.seconds));
    const stepMs = (1000 * best.seconds) / steps;
    const { dispatchMs, combineMs, applyMs, wakeMs, workMs, replyMs, loopComputeMs, loopWaitMs, loopApplyMs, fallbacks } = best;
    const ownMs = dispatchMs + combineMs + applyMs;
    const picked = chose.get(w);
    rate.set(w, samplesPerSec);
    results.push({ model: b.model, batch: batch, workers: w, ...(picked === undefined ? {} : { chose: picked.workers }), samplesPerSec: Math.round(samplesPerSec * 10) / 10 });
    coordinator.push({
      model: b.model, workers: w, stepMs, dispatchMs, combineMs, applyMs, share: ownMs / stepMs, medianSamplesPerSec: medianRate,
      wakeMs, workMs, replyMs, loopComputeMs, loopWaitMs, loopApplyMs,
    });
    if (!json) {
      console.log(`  --workers ${w === 'default' ? 'default' : w}: ${samplesPerSec.toFixed(0).padStart(6)} samples/s (median ${medianRate.toFixed(0)}), ${stepMs.toFixed(2).padStart(7)} ms/step; ` +
        `coordinator ${ownMs.toFixed(2)} ms/step (${(100 * ownMs / stepMs).toFixed(1)}%: broadcast ${dispatchMs.toFixed(2)}, reduction ${combineMs.toFixed(2)}, SGD step ${applyMs.toFixed(2)})`);
      if (loopComputeMs > 0) {
        console.log(`    per step on a thread (step loop): ${loopComputeMs.toFixed(3)} ms computing its micro-shards, ${loopWaitMs.toFixed(3)} ms waiting for the others, ` +
          `${loopApplyMs.toFixed(3)} ms reducing and applying its slice${fallbacks > 0 ? `; ${fallbacks} steps through the dispatcher` : ''}`);
      }
      if (workMs > 0) console.log(`    per order on a thread: ${wakeMs.toFixed(3)} ms until the thread noticed it, ${workMs.toFixed(3)} ms computing, ${replyMs.toFixed(3)} ms until the coordinator took the answer`);
      if (picked !== undefined) console.log(`    the default chose ${picked.workers === 0 ? "the coordinator's thread" : `${picked.workers} threads`}: ${picked.reason}`);
    }
  }
  const last = b.workers[b.workers.length - 1];
  ratios[b.model] = rate.get(last)! / rate.get(0)!;
  if (!json) console.log(`  ${last === 'default' ? 'the default' : `${last} workers`} vs 0: ${ratios[b.model].toFixed(2)}x (goal ${b.goal}x)`);
  if (b.ceiling && !process.argv.includes('--no-ceiling') && rate.has(0)) {
    const pair = await twoProcesses(b.model);
    ceilings[b.model] = (pair[0] + pair[1]) / rate.get(0)!;
    if (!json) {
      console.log(`  machine ceiling: two separate --workers 0 processes at once: ${pair.map((x) => x.toFixed(0)).join(' + ')} samples/s = ` +
        `${ceilings[b.model].toFixed(2)}x one alone; ${last} workers reach ${(100 * ratios[b.model] / ceilings[b.model]).toFixed(0)}% of it`);
    }
  }
}

if (json) console.log(JSON.stringify({ results, ratios, ceilings, coordinator }));
