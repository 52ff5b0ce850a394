// The PyTorch export checked by PyTorch itself: the nn.Sequential its module
// list describes, built in torch.nn, takes the state_dict with strict=True
// and predicts what dptrain predicts (the image models included: Conv2d,
// MaxPool2d, AvgPool2d, Flatten, Linear). Needs python3-torch (skips
// without it, fails without it under DPTRAIN_REQUIRE_TORCH=1: .ci/run).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import type { ModelSpec } from '../../src/model/spec.js';
import { exportSafetensorsTorch } from '../../src/model/torch-export.js';
import { findTorch } from '../helpers/torch.js';
import { argmaxRows, CNN_SPECS, predict, randomInput, randomModel } from './helpers.js';

const torch = findTorch();
const SCRIPT = fileURLToPath(new URL('./torch_predict.py', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'dptrain-torch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MLP: ModelSpec = {
  inputShape: [10],
  layers: [{ type: 'dense', units: 16, activation: 'relu' }, { type: 'dropout', rate: 0.2 }, { type: 'dense', units: 5, activation: 'softmax' }],
};

describe.skipIf(torch.skipReason !== null)(`PyTorch loads the export and predicts like us${torch.skipReason === null ? '' : ` (skipped: ${torch.skipReason})`}`, () => {
  const cases: [string, ModelSpec, number][] = [['mlp', MLP, 32], ...Object.entries(CNN_SPECS).map(([n, s]): [string, ModelSpec, number] => [n, s, n === 'options' ? 33 : 32])];
  for (const [name, spec, seed] of cases) {
    test(name, () => {
      const model = randomModel(spec, seed);
      const B = 16;
      const x = randomInput(model, B, seed);
      const file = join(dir, `${name}.safetensors`), xFile = join(dir, `${name}.x`), yFile = join(dir, `${name}.y`);
      writeFileSync(file, exportSafetensorsTorch(model));
      writeFileSync(xFile, new Uint8Array(x.buffer));
      const r = spawnSync(torch.python, [SCRIPT, file, xFile, String(B), yFile], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
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
