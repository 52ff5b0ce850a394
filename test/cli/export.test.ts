import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSafetensors } from '../../src/model/safetensors.js';
import { runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';

describe('dptrain export (real process)', () => {
  it('exports a trained run as PyTorch safetensors and as a TF.js layers model', async () => {
    const dir = tempDir();
    const config = writeJson(dir, 'c.json', smallMlpConfig({ maxSteps: 2 }));
    const t = await runCli(['train', '--config', config, '--out', join(dir, 'run'), '--quiet']);
    expect(t.code, t.stderr).toBe(0);
    const model = join(dir, 'run', 'model.dptmodel');

    const torch = await runCli(['export', model, '--format', 'torch', '--out', join(dir, 'w.safetensors')]);
    expect(torch.code, torch.stderr).toBe(0);
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(join(dir, 'w.safetensors'))));
    expect(tensors.get('0.weight')!.shape).toEqual([32, 784]);
    expect(tensors.get('2.weight')!.shape).toEqual([10, 32]);

    const tfjs = await runCli(['export', model, '--format', 'tfjs', '--out', join(dir, 'tfjs')]);
    expect(tfjs.code, tfjs.stderr).toBe(0);
    const json = JSON.parse(readFileSync(join(dir, 'tfjs', 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');

    const bad = await runCli(['export', model, '--format', 'onnx', '--out', join(dir, 'x')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format must be one of torch, tfjs');

    const missing = await runCli(['export', join(dir, 'nope.dptmodel'), '--format', 'torch', '--out', join(dir, 'x')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('nope.dptmodel');
  });
});
