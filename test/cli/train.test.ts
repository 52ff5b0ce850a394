import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';

describe('dptrain train (real process)', () => {
  it('trains, writes the run folder and prints the JSON summary; the same config and seed give the same bits', async () => {
    const dir = tempDir();
    const config = writeJson(dir, 'small.json', smallMlpConfig({ epochs: 2 }));
    const a = await runCli(['train', '--config', config, '--out', join(dir, 'a'), '--json']);
    expect(a.code, a.stderr).toBe(0);
    const sa = lastJson(a.stdout);
    expect(sa.steps).toBe(16);
    expect(sa.epochs).toBe(2);
    expect(sa.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(sa.test.accuracy).toBeGreaterThan(0.6);
    expect(sa.test.f1Macro).toBeGreaterThan(0.5);
    expect(sa.samplesPerSec).toBeGreaterThan(0);
    expect(sa.wallSeconds).toBeGreaterThan(0);
    for (const f of ['config.json', 'metrics.jsonl', 'model.dptmodel', 'checkpoint.msgpack']) expect(existsSync(join(dir, 'a', f))).toBe(true);
    const lines = readFileSync(join(dir, 'a', 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    expect(lines[1].test.accuracy).toBe(sa.test.accuracy);

    const b = await runCli(['train', '--config', config, '--out', join(dir, 'b'), '--json']);
    expect(b.code, b.stderr).toBe(0);
    expect(lastJson(b.stdout).weightsSha256).toBe(sa.weightsSha256);

    const c = await runCli(['train', '--config', config, '--out', join(dir, 'c'), '--json', '--seed', '4']);
    expect(lastJson(c.stdout).weightsSha256).not.toBe(sa.weightsSha256);
  });

  it('refuses a config with an unknown field, naming it', async () => {
    const dir = tempDir();
    const config = writeJson(dir, 'bad.json', smallMlpConfig({ learningRate: 0.1 }));
    const r = await runCli(['train', '--config', config, '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_CONFIG');
    expect(r.stderr).toContain('"learningRate"');
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('refuses a bad model spec field with its path', async () => {
    const dir = tempDir();
    const cfg = smallMlpConfig();
    (cfg.model as any).layers[1].units = -3;
    const r = await runCli(['train', '--config', writeJson(dir, 'bad.json', cfg), '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('model.layers[1].units: expected a positive integer');
  });

  it('refuses a wrongly typed field', async () => {
    const dir = tempDir();
    const r = await runCli(['train', '--config', writeJson(dir, 'bad.json', smallMlpConfig({ batchSize: '64' })), '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/batchSize: expected a positive whole number/);
  });

  it('names the layer and both shapes on a shape mismatch', async () => {
    const dir = tempDir();
    const cfg = smallMlpConfig();
    (cfg.model as any).layers = [{ type: 'lstm', units: 8 }, { type: 'dense', units: 10 }];
    const r = await runCli(['train', '--config', writeJson(dir, 'bad.json', cfg), '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_SHAPE');
    expect(r.stderr).toMatch(/layers\[0\] \(lstm\)/);
    expect(r.stderr).toContain('[784]');
  });

  it('refuses a non-numeric --epochs with a usage error', async () => {
    const r = await runCli(['train', '--epochs', 'two']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--epochs must be a whole number');
  });

  it('refuses a config file that is not JSON', async () => {
    const dir = tempDir();
    const file = join(dir, 'x.json');
    (await import('node:fs')).writeFileSync(file, '{\n  "epochs": 3\n  "seed": 1\n}\n');
    const r = await runCli(['train', '--config', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('x.json: not valid JSON: line 3, column 3: expected "," or "}" after a value, found """\n  3 |   "seed": 1\n    |   ^\n');
  });

  it('suggests the field meant by a misspelt one', async () => {
    const dir = tempDir();
    const cfg = smallMlpConfig({ epoch: 2 });
    delete cfg.epochs;
    const r = await runCli(['train', '--config', writeJson(dir, 'typo.json', cfg), '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(root): unknown field "epoch"; did you mean "epochs"?');
  });
});
