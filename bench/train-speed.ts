// Training speed of the core on one thread, without the coordinator:
// samples/s of the bench models (bench/bench-worker.ts's MLP 784-128-10 and
// row LSTM / GRU 28x28 -> 128 -> 10) on real MNIST, with the WebAssembly
// SIMD kernels or the TypeScript reference, each in its own process.
//
//   node dist/bench/train-speed.js [--model mlp|lstm|gru] [--batch B] [--micro K]
//        [--kernels wasm|ts|both] [--seconds S] [--json]
//
// A step is what a worker and the coordinator do for one global batch in a
// --workers 0 run: gather the rows into a batch buffer (allocated where the
// kernels read it), computeBatch over K micro-shards in the fixed tree
// order, applyStep (plain SGD, lr 0.05). With --kernels both, the two kinds
// run in turn in child processes (a process never switches kernels).
// --json prints one JSON line per measurement:
//   {"model":"lstm","batch":64,"micro":8,"kernels":"wasm-simd","samplesPerSec":2300,"bestSamplesPerSec":2400,
//    "samplesPerCpuSec":2350,"steps":...,"msPerStep":{"gather","compute","apply"},"meanLoss":...}
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadMnist } from '../coordinator/data/mnist.js';
import { BatchSampler } from '../src/data/sampler.js';
import { getLoss } from '../src/losses/index.js';
import { buildModel, initModel } from '../src/model/model.js';
import { createSgdState } from '../src/optim/sgd.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { computeBatch, shardCount } from '../src/train/batch.js';
import { applyStep, gradLength, planStep } from '../src/train/step.js';
import { parseKernelKind, setupKernels } from '../node/kernels/setup.js';

const argv = process.argv.slice(2);
function opt(name: string, dflt: string): string {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt;
}
const modelName = opt('model', 'lstm');
const batch = Number(opt('batch', '64'));
const micro = Number(opt('micro', '8'));
const seconds = Number(opt('seconds', '6'));
const kernelsArg = opt('kernels', 'both');
const json = argv.includes('--json');

const SPECS: Record<string, object> = {
  mlp: { inputShape: [784], layers: [{ type: 'dense', units: 128, activation: 'relu' }, { type: 'dense', units: 10 }] },
  lstm: { inputShape: [28, 28], layers: [{ type: 'lstm', units: 128 }, { type: 'dense', units: 10 }] },
  gru: { inputShape: [28, 28], layers: [{ type: 'gru', units: 128 }, { type: 'dense', units: 10 }] },
};
if (SPECS[modelName] === undefined || !(batch >= 1) || !(micro >= 1) || !(seconds > 0)) {
  console.error('usage: train-speed [--model mlp|lstm|gru] [--batch B] [--micro K] [--kernels wasm|ts|both] [--seconds S] [--json]');
  process.exit(2);
}

if (kernelsArg === 'both') {
  for (const kind of ['wasm', 'ts']) {
    const args = [fileURLToPath(import.meta.url), ...argv.filter((_, i) => argv[i] !== '--kernels' && argv[i - 1] !== '--kernels'), '--kernels', kind];
    const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  process.exit(0);
}

const kernelName = setupKernels(parseKernelKind(kernelsArg));
const { train } = await loadMnist();
const ds = train.dataset;
const model = buildModel(SPECS[modelName]);
initModel(model, 1);
const loss = getLoss('softmax_cross_entropy');
const plan = planStep(model);
const sgd = { lr: 0.05, momentum: 0, nesterov: false, weightDecay: 0 };
const state = createSgdState(sgd, model.numTrainable);
const sampler = new BatchSampler(1, ds.n, batch);
const xs = model.inSize;
const xBuf = allocFloats(batch * xs); // where the kernels read it in place
const yBuf = allocFloats(batch);
const sum = new Float32Array(gradLength(model));
const scratch: Float32Array[] = [];
const times = { gather: 0, compute: 0, apply: 0 };

function step(s: number): number {
  const t0 = performance.now();
  const { indices } = sampler.batch(s);
  const rows = indices.length;
  for (let r = 0; r < rows; r++) {
    const i = indices[r];
    xBuf.set(ds.x.subarray(i * xs, (i + 1) * xs), r * xs);
    yBuf[r] = ds.y[i];
  }
  const t1 = performance.now();
  computeBatch(model, loss, { x: xBuf.subarray(0, rows * xs), y: yBuf.subarray(0, rows), rows, xSize: xs, ySize: 1 },
    shardCount(rows, micro), { seed: 1, step: s }, sum, scratch);
  const t2 = performance.now();
  const result = applyStep(model, plan, sum, sgd, state, sgd.lr);
  const t3 = performance.now();
  times.gather += t1 - t0; times.compute += t2 - t1; times.apply += t3 - t2;
  return result.dataLoss;
}

// Timing: a warm-up, then rounds of about half a second; the result is the
// median round, the best one, and samples per CPU second of this process
// (on a shared, loaded machine the last two are the closest to an unloaded core).
let s = 0;
const w0 = performance.now();
while (performance.now() - w0 < Math.min(2000, seconds * 500) || s < 3) step(s++);
times.gather = times.compute = times.apply = 0;
let steps = 0, lossSum = 0, allSamples = 0;
const rates: number[] = [];
const t0 = performance.now();
const cpu0 = process.cpuUsage();
while (performance.now() - t0 < seconds * 1000 || rates.length < 3) {
  const r0 = performance.now();
  let samples = 0;
  while (performance.now() - r0 < 500 || samples === 0) {
    const rows = sampler.batch(s).indices.length;
    samples += rows;
    allSamples += rows;
    lossSum += step(s++);
    steps++;
  }
  rates.push(samples / ((performance.now() - r0) / 1000));
}
const cpu = process.cpuUsage(cpu0);
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
rates.sort((a, b) => a - b);
const median = rates[rates.length >> 1];
const per = (x: number): number => Math.round((x / steps) * 1000) / 1000;
const out = {
  model: modelName, batch, micro, kernels: kernelName, samplesPerSec: Math.round(median), bestSamplesPerSec: Math.round(rates[rates.length - 1]),
  samplesPerCpuSec: Math.round(allSamples / cpuSeconds),
  steps, msPerStep: { gather: per(times.gather), compute: per(times.compute), apply: per(times.apply) }, meanLoss: lossSum / steps,
};
if (json) console.log(JSON.stringify(out));
else console.log(`${modelName.padEnd(4)} batch ${String(batch).padStart(3)} micro ${String(micro).padStart(2)} ${kernelName.padEnd(10)} ${String(out.samplesPerSec).padStart(7)} samples/s (best round ${out.bestSamplesPerSec}, per CPU second ${out.samplesPerCpuSec})  ms/step: compute ${out.msPerStep.compute}, apply ${out.msPerStep.apply}, gather ${out.msPerStep.gather}`);
