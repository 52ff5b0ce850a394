// The PyTorch export checked by PyTorch itself: the nn.Sequential its module
// list describes, built in torch.nn, takes the state_dict with strict=True
// and predicts what dptrain predicts (the image models included: Conv2d,
// MaxPool2d, AvgPool2d, Flatten, Linear, BatchNorm1d and BatchNorm2d with
// their running statistics and num_batches_tracked). Needs python3-torch
// (skips without it, fails without it under DPTRAIN_REQUIRE_TORCH=1: .ci/run).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import type { ModelSpec } from '../../src/model/spec.js';
import { exportSafetensorsTorch } from '../../src/model/torch-export.js';
import { findTorch } from '../helpers/torch.js';
import { argmaxRows, BATCHNORM_SPECS, BATCHNORM_TORCH_SPECS, CNN_SPECS, predict, randomInput, randomModel } from './helpers.js';

const torch = findTorch();
const SCRIPT = fileURLToPath(new URL('./torch_predict.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dptrain-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MLP: ModelSpec = {
  inputShape: [10],
  layers: [{ type: 'dense', units: 16, activation: 'relu' }, { type: 'dropout', rate: 0.2 }, { type: 'dense', units: 5, activation: 'softmax' }],
};

describe.skipIf(torch.skipReason !== null)(`PyTorch loads the export and predicts like us${torch.skipReason === null ? '' : ` (skipped: ${torch.skipReason})`}`, () => {
  const cases: [string, ModelSpec, number][] = [
    ['mlp', MLP, 32],
    ...Object.entries(CNN_SPECS).map(([n, s]): [string, ModelSpec, number] => [n, s, n === 'options' ? 33 : 32]),
    ...Object.entries({ ...BATCHNORM_SPECS, ...BATCHNORM_TORCH_SPECS }).map(([n, s]): [string, ModelSpec, number] => [`batchnorm ${n}`, s, 32]),
  ];
  for (const [name, spec, seed] of cases) {
    test(name, () => {
      const model = randomModel(spec, seed);
      const B = 16;
      const x = randomInput(model, B, seed);
      const file = join(dir, `${name}.safetensors`), xFile = join(dir, `${name}.x`), yFile = join(dir, `${name}.y`);
      writeFileSync(file, exportSafetensorsTorch(model, { batchesTracked: 1234 }));
      writeFileSync(xFile, new Uint8Array(x.buffer));
      const r = spawnSync(torch.python, [SCRIPT, file, xFile, String(B), yFile], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout.trim().split('\n').pop()!) as { modules: string[]; num_batches_tracked: Record<string, number> };
      const norms = model.layers.filter((l) => l.type === 'batchnorm').length;
      expect(Object.values(report.num_batches_tracked)).toEqual(new Array(norms).fill(1234));
      // The module classes PyTorch built: BatchNorm2d per channel of an image, Fed* (torch_predict.py) fed as the caveat says.
      const classes = report.modules.filter((m) => m.includes('BatchNorm')).map((m) => m.split('(')[0]);
      const expected: Record<string, string[]> = {
        'batchnorm image': ['BatchNorm2d', 'BatchNorm2d', 'BatchNorm2d', 'BatchNorm1d'],
        'batchnorm imageLast': ['FedBatchNorm2d', 'FedBatchNorm2d'], 'batchnorm volume': ['BatchNorm3d', 'FedBatchNorm3d'],
        'batchnorm rank5': ['FedBatchNorm1d', 'FedBatchNorm1d'],
      };
      if (expected[name] !== undefined) expect(classes).toEqual(expected[name]);
      const theirs = new Float32Array(new Uint8Array(readFileSync(yFile)).buffer);
      const ours = predict(model, x, B);
      expect(theirs.length).toBe(ours.length);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - theirs[i]));
      expect(worst).toBeLessThan(1e-4);
      if (model.outShape.length === 1) expect(argmaxRows(theirs, B, model.outSize)).toEqual(argmaxRows(ours, B, model.outSize));
    });
  }
});
