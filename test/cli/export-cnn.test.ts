// The CNN example, and a small CNN with batch normalization per channel after
// each convolution, end to end: trained by `dptrain train`, exported by
// `dptrain export` for PyTorch and TF.js, loaded by PyTorch (torch.nn, Debian's
// python3-torch) and by tf.loadLayersModel, and run on the 2,000 MNIST test
// digits: the classes of `dptrain predict` on every digit, the logits of the
// model file within 1e-4 (BatchNorm2d / BatchNormalization with the running
// statistics, num_batches_tracked = the training steps).
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { loadTrainData } from '../../coordinator/data/load.js';
import { loadModelFile } from '../../coordinator/run/model-files.js';
import type { TfjsModelJson } from '../../src/model/tfjs-export.js';
import { ROOT, runCli, smallCnnBnConfig, tempDir, writeJson } from '../helpers/cli.js';
import { findTorch } from '../helpers/torch.js';

const torch = findTorch();

function argmax(a: Float32Array, rows: number, cols: number): number[] {
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let j = 1; j < cols; j++) if (a[r * cols + j] > a[r * cols + best]) best = j;
    return best;
  });
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const STEPS = 40;
const CASES: [name: string, config: (dir: string) => string][] = [
  ['the CNN example', () => join(ROOT, 'examples/mnist-cnn.json')],
  ['a CNN with batch normalization per channel', (dir) => writeJson(dir, 'cnn-bn.json', smallCnnBnConfig({ epochs: 4 }))],
];

describe.each(CASES)('exported, %s predicts like dptrain, in PyTorch and TF.js', (_name, config) => {
  it('on the 2,000 test digits: the same classes as dptrain predict, logits within 1e-4', async () => {
    const dir = tempDir('dptrain-export-cnn-');
    const t = await runCli(['train', '--config', config(dir), '--out', join(dir, 'run'), '--workers', '0', '--max-steps', String(STEPS), '--quiet']);
    expect(t.code, t.stderr).toBe(0);
    const modelFile = join(dir, 'run', 'model.dptmodel');

    // The test digits as a CSV of grey levels (what predict reads) and as the model's inputs.
    const { test } = await loadTrainData({ type: 'mnist', view: 'flat' });
    const n = test.n;
    const { model } = loadModelFile(modelFile);
    const x = new Float32Array(n * 784);
    const header = Array.from({ length: 784 }, (_, k) => `pixel${k}`).join(',');
    const rows: string[] = [];
    for (let i = 0; i < n; i++) {
      const grey = Array.from(test.x.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255));
      rows.push(grey.join(','));
      grey.forEach((g, k) => { x[i * 784 + k] = g / 255; }); // the stored scaling of an MNIST model
    }
    const csv = join(dir, 'digits.csv');
    writeFileSync(csv, [header, ...rows].join('\n'));
    const p = await runCli(['predict', modelFile, '--input', csv]);
    expect(p.code, p.stderr).toBe(0);
    const predicted = p.stdout.trim().split('\n').slice(1).map((line) => Number(line.split(',')[0]));
    expect(predicted).toHaveLength(n);
    const logits = model.forward(x, n, { training: false, seed: 0, step: 0, rowOffset: 0 }).slice();
    expect(argmax(logits, n, 10)).toEqual(predicted);

    // TF.js: the exported folder through tf.loadLayersModel.
    expect((await runCli(['export', modelFile, '--format', 'tfjs', '--out', join(dir, 'tfjs')])).code).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'tfjs', 'model.json'), 'utf8')) as TfjsModelJson;
    const weights = new Uint8Array(readFileSync(join(dir, 'tfjs', 'weights.bin')));
    await tf.setBackend('cpu');
    const net = await tf.loadLayersModel(tf.io.fromMemory({
      modelTopology: json.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
      weightSpecs: json.weightsManifest[0].weights, weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
    }));
    const tfLogits = tf.tidy(() => (net.predict(tf.tensor(x, [n, 1, 28, 28])) as tf.Tensor).dataSync() as Float32Array);
    expect(argmax(tfLogits, n, 10)).toEqual(predicted);
    expect(maxAbsDiff(tfLogits, logits)).toBeLessThan(1e-4);
    net.dispose();

    // PyTorch: the safetensors export in the nn.Sequential its module list describes.
    expect((await runCli(['export', modelFile, '--format', 'torch', '--out', join(dir, 'cnn.safetensors')])).code).toBe(0);
    if (torch.skipReason !== null) {
      console.warn(`the PyTorch half skipped: ${torch.skipReason}`);
      return;
    }
    writeFileSync(join(dir, 'x.f32'), new Uint8Array(x.buffer));
    const script = fileURLToPath(new URL('../model/torch_predict.py', import.meta.url));
    const r = spawnSync(torch.python, [script, join(dir, 'cnn.safetensors'), join(dir, 'x.f32'), String(n), join(dir, 'y.f32')], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { num_batches_tracked: Record<string, number> };
    const norms = model.layers.filter((l) => l.type === 'batchnorm').length;
    expect(Object.values(report.num_batches_tracked)).toEqual(new Array(norms).fill(STEPS));
    const ptLogits = new Float32Array(new Uint8Array(readFileSync(join(dir, 'y.f32'))).buffer);
    expect(argmax(ptLogits, n, 10)).toEqual(predicted);
    expect(maxAbsDiff(ptLogits, logits)).toBeLessThan(1e-4);
  }, 300_000);
});
