// A training fingerprint: the weightsSha256 of a short fixed run through the
// core (buildModel, computeBatch over the micro-shards in the fixed tree
// order, applyStep), pure TypeScript with no Node import, so that the very
// same code runs in Node (test/tensor/wasm-training.test.ts,
// test/browser/browser.test.ts) and in the browser page (page.ts).
//
// The runs cover every layer family: an MLP with batch normalization,
// dropout and L2, a row LSTM, a CNN trained with Adam, a CNN with batch
// normalization per channel and a row GRU returning sequences, on the first
// samples of the MNIST training split (the dataset blob of src/data/binary.ts).
import type { Dataset } from '../../src/data/dataset.js';
import { sha256Hex } from '../../src/data/sha256.js';
import { BatchSampler } from '../../src/data/sampler.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { createOptimizerState, type OptimizerConfig } from '../../src/optim/optimizer.js';
import type { SgdConfig } from '../../src/optim/sgd.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { computeBatch, shardCount } from '../../src/train/batch.js';
import { applyStep, gradLength, planStep } from '../../src/train/step.js';

export interface FingerprintRun {
  name: string;
  spec: object;
  loss: string;
  batch: number;
  microShards: number;
  steps: number;
  /** Default: SGD with momentum and weight decay (SGD below). */
  optimizer?: OptimizerConfig;
}

export const RUNS: readonly FingerprintRun[] = [
  {
    name: 'mlp',
    spec: {
      inputShape: [784],
      layers: [
        { type: 'dense', units: 48, kernelInit: 'he_uniform', l2: 0.0005 },
        { type: 'batchnorm' },
        { type: 'relu' },
        { type: 'dropout', rate: 0.2 },
        { type: 'dense', units: 10, activation: 'softmax' },
      ],
    },
    loss: 'categorical_cross_entropy_probs',
    batch: 64, microShards: 8, steps: 12,
  },
  {
    name: 'lstm',
    spec: { inputShape: [28, 28], layers: [{ type: 'lstm', units: 24 }, { type: 'dense', units: 10 }] },
    loss: 'softmax_cross_entropy',
    batch: 32, microShards: 4, steps: 6,
  },
  {
    // Convolutions and pooling on the image of each digit (the same 784 floats), Adam's update.
    name: 'cnn',
    spec: {
      inputShape: [1, 28, 28],
      layers: [
        { type: 'conv2d', filters: 6, kernelSize: 5, activation: 'relu', kernelInit: 'he_uniform' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'conv2d', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' },
        { type: 'avgpool2d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 10 },
      ],
    },
    loss: 'softmax_cross_entropy',
    batch: 32, microShards: 4, steps: 6,
    optimizer: { type: 'adam', lr: 0.003, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.0001 },
  },
  {
    // Batch normalization per channel after each convolution (ghost batch norm over the micro-shards), SGD.
    name: 'cnn-bn',
    spec: {
      inputShape: [1, 28, 28],
      layers: [
        { type: 'conv2d', filters: 6, kernelSize: 5, useBias: false, kernelInit: 'he_uniform' },
        { type: 'batchnorm' },
        { type: 'relu' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'conv2d', filters: 8, kernelSize: 3, padding: 'same', useBias: false },
        { type: 'batchnorm', momentum: 0.2 },
        { type: 'relu' },
        { type: 'avgpool2d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 10 },
      ],
    },
    loss: 'softmax_cross_entropy',
    batch: 32, microShards: 4, steps: 6,
  },
  {
    name: 'gru',
    spec: {
      inputShape: [28, 28],
      layers: [{ type: 'gru', units: 13, returnSequences: true }, { type: 'flatten' }, { type: 'dense', units: 10 }],
    },
    loss: 'softmax_cross_entropy',
    batch: 32, microShards: 4, steps: 6,
  },
];

/** Samples of the MNIST training split the fingerprints use (the blob served to the browser). */
export const FINGERPRINT_SAMPLES = 512;

const SEED = 7;
const SGD: SgdConfig = { lr: 0.05, momentum: 0.9, nesterov: false, weightDecay: 0.0001 };

export interface Fingerprint {
  name: string;
  weightsSha256: string;
  /** Mean training loss of the last step (a sanity check that it trained). */
  loss: number;
  /** The final flat parameters (for tolerance comparisons). */
  params: Float32Array;
}

/** Trains `run` on ds (x (n, 784), y class ids) with the kernels in effect. */
export function fingerprint(run: FingerprintRun, ds: Dataset): Fingerprint {
  const loss = getLoss(run.loss);
  const model = buildModel(run.spec);
  initModel(model, SEED);
  const plan = planStep(model);
  const optimizer = run.optimizer ?? SGD;
  const state = createOptimizerState(optimizer, model.numTrainable);
  const sampler = new BatchSampler(SEED, ds.n, run.batch);
  const xs = model.inSize;
  const xBuf = allocFloats(run.batch * xs); // where the kernels read it in place
  const yBuf = allocFloats(run.batch);
  const sum = new Float32Array(gradLength(model));
  let last = NaN;
  for (let step = 0; step < run.steps; step++) {
    const { indices } = sampler.batch(step);
    const rows = indices.length;
    for (let r = 0; r < rows; r++) {
      const i = indices[r];
      xBuf.set(ds.x.subarray(i * xs, (i + 1) * xs), r * xs);
      yBuf[r] = ds.y[i]!;
    }
    computeBatch(model, loss, { x: xBuf.subarray(0, rows * xs), y: yBuf.subarray(0, rows), rows, xSize: xs, ySize: 1 },
      shardCount(rows, run.microShards), { seed: SEED, step }, sum);
    last = applyStep(model, plan, sum, optimizer, state, optimizer.lr).loss;
  }
  const p = model.params;
  return {
    name: run.name,
    weightsSha256: sha256Hex(new Uint8Array(p.buffer, p.byteOffset, model.size * 4)),
    loss: last,
    params: p.slice(0, model.size),
  };
}
