// The exports carry what prediction needs (src/model/export-info.ts), and the
// recipes the docs give for PyTorch and TF.js predict, from raw CSV rows,
// the classes `dptrain predict` predicts:
//   - a real run of examples/csv-blobs.json (standardised features, class
//     names), exported with the real `dptrain export` in both formats;
//   - TF.js: tf.loadLayersModel through tfjs's own model.json reader
//     (getModelArtifactsForJSON, which its http and file loaders use), then
//     getUserDefinedMetadata(), scale, predict, argmax, name: the docs' lines;
//   - PyTorch: the docs' lines, run by PyTorch itself (torch_recipe.py, with
//     Debian's python3-torch: test/helpers/torch.ts; skipped, and said so,
//     without it, a failure under DPTRAIN_REQUIRE_TORCH=1).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeSafetensors } from '../../src/model/safetensors.js';
import type { ExportMetadata } from '../../src/model/export-info.js';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';
import { findTorch } from '../helpers/torch.js';

const dir = tempDir();
const BLOBS = join(ROOT, 'examples/data/blobs.csv');
const FEATURES = ['feature_a', 'feature_b', 'feature_c', 'temperature'];

/** The blobs rows as raw numbers, in the model's feature order, and what `dptrain predict` says of them. */
let rows: number[][] = [];
let expected: string[] = [];

const torch = findTorch();
if (torch.skipReason !== null) console.warn(`export-interop: the PyTorch recipe check is skipped: ${torch.skipReason}`);
const RECIPE = fileURLToPath(new URL('./torch_recipe.py', import.meta.url));

beforeAll(async () => {
  const t = await runCli(['train', '--config', join(ROOT, 'examples/csv-blobs.json'), '--out', join(dir, 'run'), '--workers', '0', '--epochs', '3', '--quiet']);
  expect(t.code, t.stderr).toBe(0);
  const model = join(dir, 'run', 'model.dptmodel');
  for (const [format, out] of [['torch', 'blobs.safetensors'], ['tfjs', 'tfjs']]) {
    const e = await runCli(['export', model, '--format', format, '--out', join(dir, out)]);
    expect(e.code, e.stderr).toBe(0);
  }
  const p = await runCli(['predict', model, '--input', BLOBS]);
  expect(p.code, p.stderr).toBe(0);
  expected = p.stdout.trim().split('\n').slice(1).map((line) => line.split(',')[0]);
  const [header, ...lines] = readFileSync(BLOBS, 'utf8').trim().split('\n');
  const columns = header.split(',').map((c) => c.trim());
  rows = lines.map((line) => {
    const cells = line.split(',');
    return FEATURES.map((f) => Number(cells[columns.indexOf(f)]));
  });
  expect(rows.length).toBe(expected.length);
  expect(new Set(expected).size).toBe(3);
}, 120_000);

describe('exports carry the scaling and the class names', () => {
  it('safetensors __metadata__: inference (JSON), loss, outputs, scaling_formula', () => {
    const { metadata } = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'blobs.safetensors'))));
    const info = JSON.parse(metadata.inference) as ExportMetadata;
    expect(info.featureNames).toEqual(FEATURES);
    expect(info.classNames).toEqual(['amber', 'cobalt', 'jade']);
    expect(info.scaling!.mean).toHaveLength(4);
    expect(info.scaling!.scale).toHaveLength(4);
    expect(metadata.loss).toBe('softmax_cross_entropy');
    expect(metadata.outputs).toMatch(/^logits: the class is the argmax/);
    expect(metadata.scaling_formula).toContain('float64');
  });

  it('model.json userDefinedMetadata: the same fields', () => {
    const json = JSON.parse(readFileSync(join(dir, 'tfjs', 'model.json'), 'utf8')) as { userDefinedMetadata: ExportMetadata };
    const torchInfo = JSON.parse(decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'blobs.safetensors')))).metadata.inference) as ExportMetadata;
    const { featureNames, scaling, classNames, loss } = json.userDefinedMetadata;
    expect({ featureNames, scaling, classNames }).toEqual(torchInfo);
    expect(loss).toBe('softmax_cross_entropy');
  });

  it('TF.js: the docs\' recipe predicts the classes `dptrain predict` predicts', async () => {
    await tf.setBackend('cpu');
    const folder = join(dir, 'tfjs');
    const modelJson = JSON.parse(readFileSync(join(folder, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    const net = await tf.loadLayersModel({
      load: () => tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => [
        manifest.flatMap((g) => g.weights),
        new Uint8Array(readFileSync(join(folder, manifest[0].paths[0]))).buffer,
      ]),
    });
    // The docs' lines:
    const { scaling, classNames } = net.getUserDefinedMetadata() as { scaling: { mean: number[]; scale: number[] }; classNames: string[] };
    const x = tf.tensor2d(rows).sub(scaling.mean).div(scaling.scale);
    const labels = Array.from((net.predict(x) as tf.Tensor).argMax(-1).dataSync(), (i) => classNames[i]);
    expect(labels).toEqual(expected);
    net.dispose();
  });

  it.skipIf(torch.skipReason !== null)('PyTorch: the docs\' recipe predicts the classes `dptrain predict` predicts', () => {
    writeFileSync(join(dir, 'rows.json'), JSON.stringify(rows));
    const out = execFileSync(torch.python, [RECIPE, join(dir, 'blobs.safetensors'), join(dir, 'rows.json')], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expected);
  });
});
