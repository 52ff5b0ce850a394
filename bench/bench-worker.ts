// One measurement of `npm run bench`, in a process of its own (bench.ts forks
// this file once per implementation and round): trains one model on real
// MNIST with one implementation, on one thread, and reports samples per
// second over a timed window.
//
//   node dist/bench/bench-worker.js '{"model":"mlp","batch":64,"impl":"dptrain",...}'
//
// Implementations:
//   dptrain    the real core, as the trainer runs it (coordinator/run/trainer.ts
//              createStepper + coordinator/engine.ts createLocalEngine: gather
//              the rows, computeBatch over the micro-shards, applyStep), with
//              its default WebAssembly SIMD kernels
//   dptrain-ts the same with the pure-TypeScript reference kernels
//   tfjs-cpu   TensorFlow.js 4.22, the plain JavaScript cpu backend
//   tfjs-wasm  TensorFlow.js 4.22, the WebAssembly backend, one thread
//   pytorch    PyTorch 1.13 (Debian's python3-torch), one thread: the CNN only
// All of them see the same batches (the trainer's sampler: epochPermutation of
// seed 1) and take plain SGD steps with lr 0.05 on the same layers (the CNN:
// Adam with lr 1e-3; cnn-predict times the forward pass alone).
//
// Timing: warm-up steps until `warmupSeconds` have passed (at least one),
// then a timed window of whole steps until `seconds` have passed
// (at least `minSteps`). The window is measured twice: wall-clock time, and
// the CPU time of this process (process.cpuUsage: user + system, every
// thread; all three implementations compute on the main thread, the rest is
// V8's GC and compiler helpers). On a machine that other work shares, CPU
// time is the steadier measure of the code's own speed. The result goes to
// the parent over the IPC channel (and to stdout as one JSON line when run by
// hand).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Scalar, Tensor } from '@tensorflow/tfjs';
import { loadMnist } from '../coordinator/data/mnist.js';
import { parseConfig } from '../coordinator/run/config.js';
import { createLocalEngine } from '../coordinator/engines/local.js';
import { buildTrainModel, createStepper } from '../coordinator/run/stepper.js';
import { type Dataset, viewAs } from '../src/data/dataset.js';
import { epochPermutation } from '../src/data/sampler.js';
import { getLoss } from '../src/losses/index.js';
import { kernels, setKernels, tsKernelsDense } from '../src/tensor/kernels.js';
import { setupKernels } from '../node/kernels/setup.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { gradLength } from '../src/train/step.js';

export type BenchModel = 'mlp' | 'lstm' | 'cnn' | 'cnn-predict';
export type BenchImpl = 'dptrain' | 'dptrain-ts' | 'tfjs-cpu' | 'tfjs-wasm' | 'pytorch';
/** How TF.js trains: model.trainOnBatch (softmax + categorical cross-entropy) or optimizer.minimize (logits + softmaxCrossEntropy). */
export type TfjsLoop = 'fit' | 'minimize';

export interface WorkerTask {
  model: BenchModel;
  batch: number;
  impl: BenchImpl;
  /** Length of the timed window. */
  seconds: number;
  warmupSeconds: number;
  /** At least this many steps in the timed window. */
  minSteps: number;
  /** dptrain: micro-shards per batch. */
  microShards: number;
  /** dptrain-ts: the TypeScript kernels without their skipping of zeros (tsKernelsDense; same bits). */
  denseKernels: boolean;
  tfjsLoop: TfjsLoop;
}

export interface WorkerResult {
  task: WorkerTask;
  steps: number;
  /** Wall-clock length of the window. */
  seconds: number;
  /** CPU time of the process during the window. */
  cpuSeconds: number;
  /** Samples per wall-clock second. */
  samplesPerSec: number;
  /** Samples per CPU second. */
  samplesPerCpuSec: number;
  /** Mean training loss over the window (a sanity check that it trains). */
  loss: number;
  /** What actually ran (backend name, kernel set). */
  detail: string;
  /** Set when the implementation cannot run the case (e.g. TF.js wasm has no convolution gradients). */
  error?: string;
}

const SEED = 1;
const LR = 0.05;
const EPOCHS = 1_000_000; // never reached: the window decides how long we train

/** The fixed CNN of issue 22: 5,994 parameters, trained with Adam (lr 1e-3); `cnn-predict` times its forward pass. */
const CNN_SPEC = {
  inputShape: [1, 28, 28],
  layers: [
    { type: 'conv2d', filters: 8, kernelSize: 5, activation: 'relu' },
    { type: 'maxpool2d', poolSize: 2 },
    { type: 'conv2d', filters: 16, kernelSize: 5, activation: 'relu' },
    { type: 'maxpool2d', poolSize: 2 },
    { type: 'flatten' },
    { type: 'dense', units: 10 },
  ],
};
const ADAM_LR = 1e-3;

/** The model specs, in dptrain's format; the TF.js and PyTorch models have the same layers. */
export const MODEL_SPECS: Record<BenchModel, { view: 'flat' | 'rows' | 'image'; spec: object }> = {
  cnn: { view: 'image', spec: CNN_SPEC },
  'cnn-predict': { view: 'image', spec: CNN_SPEC },
  mlp: {
    view: 'flat',
    spec: { inputShape: [784], layers: [{ type: 'dense', units: 128, activation: 'relu' }, { type: 'dense', units: 10 }] },
  },
  lstm: {
    view: 'rows',
    spec: { inputShape: [28, 28], layers: [{ type: 'lstm', units: 128 }, { type: 'dense', units: 10 }] },
  },
};

/** A training step; resolves to the batch's mean loss and its row count. */
type Step = (step: number) => Promise<{ loss: number; rows: number }>;

async function dptrainStep(task: WorkerTask, train: Dataset): Promise<{ step: Step; detail: string }> {
  const { view, spec } = MODEL_SPECS[task.model];
  const cnn = task.model.startsWith('cnn');
  const config = parseConfig({
    seed: SEED, data: { type: 'mnist', view }, model: spec, loss: 'softmax_cross_entropy',
    optimizer: cnn ? { type: 'adam', lr: ADAM_LR } : { lr: LR }, epochs: EPOCHS, batchSize: task.batch, microShards: task.microShards,
  }, 'bench');
  // Before building: the model's buffers go where the kernels read them in place.
  setupKernels(task.impl === 'dptrain' ? 'wasm' : 'ts');
  if (task.denseKernels && task.impl === 'dptrain-ts') setKernels(tsKernelsDense);
  const model = buildTrainModel(config);
  const stepper = createStepper(config, model, train.n);
  const engine = createLocalEngine(model, getLoss(config.loss), train, SEED, config.batchSize);
  const sum = allocFloats(gradLength(model));
  if (task.model === 'cnn-predict') {
    // The forward pass in evaluation mode, on the batch's rows gathered as the trainer gathers them.
    const x = allocFloats(task.batch * model.inSize);
    return {
      detail: `${kernels().name} kernels, forward pass`,
      async step(step) {
        const job = stepper.job(step);
        const rows = job.indices.length;
        for (let r = 0; r < rows; r++) x.set(train.x.subarray(job.indices[r] * model.inSize, (job.indices[r] + 1) * model.inSize), r * model.inSize);
        const y = model.forward(x.subarray(0, rows * model.inSize), rows, { training: false, seed: SEED, step, rowOffset: 0 });
        return { loss: y[0], rows };
      },
    };
  }
  return {
    detail: `${kernels().name} kernels, microShards ${task.microShards}`,
    async step(step) {
      const job = stepper.job(step);
      await engine.batchGradient(job, sum);
      return { loss: stepper.apply(step, sum).result.dataLoss, rows: job.indices.length };
    },
  };
}

async function tfjsStep(task: WorkerTask, train: Dataset): Promise<{ step: Step; detail: string }> {
  // NOTE: loaded with require(): the CommonJS builds are the ones meant for Node.
  const require = createRequire(import.meta.url);
  const tf = require('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  const backend = task.impl === 'tfjs-wasm' ? 'wasm' : 'cpu';
  if (backend === 'wasm') {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    // The .wasm binaries sit in the package's dist folder; a plain file path
    // (with the trailing slash: it is a prefix) is what Emscripten reads in Node.
    const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
    wasm.setWasmPaths(`${dist}/`);
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false); // one thread (Node has none anyway)
    wasm.setThreadsCount(1);
  }
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: the ${backend} backend did not initialise`);
  await tf.ready();

  const fit = task.tfjsLoop === 'fit';
  const cnn = task.model.startsWith('cnn');
  const head = tf.layers.dense({ units: 10, activation: fit ? 'softmax' : 'linear' });
  const model = task.model === 'mlp'
    ? tf.sequential({ layers: [tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }), head] })
    : cnn
      // NHWC, TF.js's layout: MNIST's one channel makes [28, 28, 1] the same floats as our [1, 28, 28].
      ? tf.sequential({
        layers: [
          tf.layers.conv2d({ filters: 8, kernelSize: 5, activation: 'relu', inputShape: [28, 28, 1] }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.conv2d({ filters: 16, kernelSize: 5, activation: 'relu' }),
          tf.layers.maxPooling2d({ poolSize: 2 }),
          tf.layers.flatten(),
          head,
        ],
      })
      // NOTE: Keras' (and TF.js's) LSTM default recurrent activation is hard
      // sigmoid; ours (PyTorch's) is the logistic sigmoid.
      : tf.sequential({ layers: [tf.layers.lstm({ units: 128, recurrentActivation: 'sigmoid', inputShape: [28, 28] }), head] });
  const optimizer = cnn ? tf.train.adam(ADAM_LR) : tf.train.sgd(LR);
  if (fit) model.compile({ optimizer, loss: 'categoricalCrossentropy' });

  const n = train.n;
  const xs = train.x.length / n;
  const B = task.batch;
  const stepsPerEpoch = Math.ceil(n / B);
  const xBuf = new Float32Array(B * xs);
  const yBuf = new Float32Array(B * 10); // one-hot
  const xShape: number[] = task.model === 'mlp' ? [784] : cnn ? [28, 28, 1] : [28, 28];
  let perm: Uint32Array | null = null;
  let permEpoch = -1;
  return {
    detail: `backend ${tf.getBackend()}, ${fit ? 'model.trainOnBatch' : 'optimizer.minimize'}`,
    async step(step) {
      // The same batches as the trainer's sampler (coordinator/trainer.ts createStepper).
      const epoch = Math.floor(step / stepsPerEpoch);
      const b = step % stepsPerEpoch;
      if (permEpoch !== epoch) { perm = epochPermutation(SEED, epoch, n); permEpoch = epoch; }
      const idx = perm!.subarray(b * B, Math.min(n, (b + 1) * B));
      const rows = idx.length;
      yBuf.fill(0);
      for (let r = 0; r < rows; r++) {
        const i = idx[r];
        xBuf.set(train.x.subarray(i * xs, (i + 1) * xs), r * xs);
        yBuf[r * 10 + train.y[i]] = 1;
      }
      const x = tf.tensor(xBuf.subarray(0, rows * xs), [rows, ...xShape]);
      const y = tf.tensor2d(yBuf.subarray(0, rows * 10), [rows, 10]);
      try {
        if (task.model === 'cnn-predict') {
          const out = model.predict(x) as Tensor;
          const v = (await out.data())[0];
          out.dispose();
          return { loss: v, rows };
        }
        if (fit) return { loss: Number(await model.trainOnBatch(x, y)), rows };
        const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x) as Tensor) as Scalar, true)!; // eslint-disable-line @typescript-eslint/no-unnecessary-type-assertion -- tfjs's minimize() is not generic
        const v = (await loss.data())[0];
        loss.dispose();
        return { loss: v, rows };
      } finally {
        x.dispose();
        y.dispose();
      }
    },
  };
}

export async function runTask(task: WorkerTask): Promise<WorkerResult> {
  const mnist = await loadMnist();
  let train = mnist.train.dataset;
  const view = MODEL_SPECS[task.model].view;
  if (view !== 'flat') train = viewAs(train, view === 'rows' ? [28, 28] : [1, 28, 28]);
  if (task.impl === 'pytorch') return runTorch(task, train);
  const { step, detail } = task.impl.startsWith('dptrain') ? await dptrainStep(task, train) : await tfjsStep(task, train);

  let s = 0;
  const w0 = performance.now();
  try {
    await step(s++);
  } catch (err) {
    // E.g. TF.js's wasm backend: "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'".
    const error = (err as Error).message.split('\n')[0];
    return { task, steps: 0, seconds: 0, cpuSeconds: 0, samplesPerSec: 0, samplesPerCpuSec: 0, loss: NaN, detail, error };
  }
  while (performance.now() - w0 < task.warmupSeconds * 1000) await step(s++);

  let steps = 0;
  let samples = 0;
  let lossSum = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  let elapsed = 0;
  while (steps < task.minSteps || elapsed < task.seconds * 1000) {
    const r = await step(s++);
    lossSum += r.loss;
    samples += r.rows; // the last batch of an epoch may be short
    steps++;
    elapsed = performance.now() - t0;
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return {
    task, steps, seconds: elapsed / 1000, cpuSeconds,
    samplesPerSec: samples / (elapsed / 1000),
    samplesPerCpuSec: samples / cpuSeconds,
    loss: lossSum / steps, detail,
  };
}

/**
 * PyTorch 1.13 on one thread (bench/torch_cnn.py, Debian's python3-torch):
 * the same CNN, Adam, the trainer's batches (written for it to a temporary
 * folder with the training set).
 */
function runTorch(task: WorkerTask, train: Dataset): WorkerResult {
  const python = process.env.DPTRAIN_PYTHON ?? '/usr/bin/python3';
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-bench-torch-'));
  try {
    const B = task.batch, n = train.n, steps = 6000;
    const stepsPerEpoch = Math.ceil(n / B);
    const batches = new Int32Array(steps * B).fill(-1);
    for (let s = 0; s < steps; s++) {
      const perm = epochPermutation(SEED, Math.floor(s / stepsPerEpoch), n);
      const b = s % stepsPerEpoch;
      batches.set(perm.subarray(b * B, Math.min(n, (b + 1) * B)), s * B);
    }
    writeFileSync(join(dir, 'x.f32'), new Uint8Array(train.x.buffer, train.x.byteOffset, train.x.byteLength));
    writeFileSync(join(dir, 'y.f32'), new Uint8Array(train.y.buffer, train.y.byteOffset, train.y.byteLength));
    writeFileSync(join(dir, 'batches.i32'), new Uint8Array(batches.buffer));
    const script = fileURLToPath(new URL('../../bench/torch_cnn.py', import.meta.url));
    const r = spawnSync(python, [script, dir, JSON.stringify({ ...task, lr: ADAM_LR })], { encoding: 'utf8' });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !last.startsWith('{')) {
      const error = `PyTorch did not run (${python}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`;
      return { task, steps: 0, seconds: 0, cpuSeconds: 0, samplesPerSec: 0, samplesPerCpuSec: 0, loss: NaN, detail: 'pytorch', error };
    }
    return { task, ...(JSON.parse(last) as Omit<WorkerResult, 'task'>) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Entry point (only when run as the script, not when imported): the task is the first argument (JSON).
const arg = process.argv[2];
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && arg !== undefined) {
  const result = await runTask(JSON.parse(arg) as WorkerTask);
  if (process.send !== undefined) {
    await new Promise<void>((resolve, reject) => process.send!(result, (err: Error | null) => (err ? reject(err) : resolve())));
  } else {
    process.stdout.write(JSON.stringify(result) + '\n');
  }
}
