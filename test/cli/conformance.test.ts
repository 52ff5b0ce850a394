import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES_DIR } from '../helpers/fixtures.js';
import { lastJson, runCli, tempDir } from '../helpers/cli.js';

describe('dptrain conformance (real process)', () => {
  it('passes every shared fixture at rtol 1e-4 / atol 1e-5, SGD trajectories included', async () => {
    const r = await runCli(['conformance', FIXTURES_DIR, '--json']);
    const report = lastJson(r.stdout);
    expect(report.passed, r.stdout).toBe(true);
    expect(r.code).toBe(0);
    const files = report.files.map((f: any) => f.file);
    for (const f of ['activations.json', 'losses.json', 'lstm.json', 'gru.json', 'sgd_rnn.json', 'sgd_data_parallel.json', 'metrics.json']) {
      expect(files).toContain(f);
    }
    for (const f of report.files) {
      expect(f.failed).toBe(0);
      expect(f.cases).toBeGreaterThan(0);
      expect(f.worstRelErr).toBeLessThan(1e-3);
    }
  });

  for (const kernels of ['wasm', 'ts']) {
    it(`passes every fixture, convolution, pooling, Adam and BatchNorm2d included, with --kernels ${kernels}`, async () => {
      const r = await runCli(['conformance', FIXTURES_DIR, '--json', '--kernels', kernels]);
      const report = lastJson(r.stdout);
      expect(report.passed, r.stdout).toBe(true);
      expect(r.code).toBe(0);
      const results = new Map(report.files.map((f: any) => [f.file, f]));
      for (const [file, cases] of [['conv2d.json', 7], ['pool2d.json', 7], ['adam.json', 3], ['batchnorm2d.json', 13]] as const) {
        expect(results.get(file)).toMatchObject({ cases, failed: 0 });
      }
    });
  }

  it('fails, naming the value, when a reference number is changed', async () => {
    const dir = tempDir();
    const fixture = JSON.parse(readFileSync(join(FIXTURES_DIR, 'dense.json'), 'utf8'));
    fixture.cases[0].outputs.y.data[3] += 0.01;
    writeFileSync(join(dir, 'dense.json'), JSON.stringify(fixture));
    const r = await runCli(['conformance', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/outputs\.y: worst ratio .* at index 3/);
  });

  it('takes every shape from the file: a resized SGD trajectory still runs its own numbers', async () => {
    // Fewer steps than the file's: the runner must read `steps` and `batches`, not assume 40.
    const dir = tempDir();
    const fixture = JSON.parse(readFileSync(join(FIXTURES_DIR, 'sgd_mlp_plain.json'), 'utf8'));
    const c = fixture.cases[0];
    c.config.steps = 5;
    c.inputs.batches.shape[0] = 5;
    c.inputs.batches.data = c.inputs.batches.data.slice(0, 40);
    c.outputs.losses.shape = [5];
    c.outputs.losses.data = c.outputs.losses.data.slice(0, 5);
    for (const k of Object.keys(c.outputs)) if (k.startsWith('final_') || k.startsWith('full_')) delete c.outputs[k];
    writeFileSync(join(dir, 'short.json'), JSON.stringify(fixture));
    const r = await runCli(['conformance', dir, '--json']);
    expect(lastJson(r.stdout).passed, r.stdout).toBe(true);
  });

  it('reports an unreadable file and exits non-zero', async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES_DIR, 'dense.json'), join(dir, 'dense.json'));
    writeFileSync(join(dir, 'broken.json'), '{"name": "dense", "cases": [ {');
    const r = await runCli(['conformance', dir, '--json']);
    expect(r.code).toBe(1);
    const report = lastJson(r.stdout);
    expect(report.passed).toBe(false);
    expect(report.files.find((f: any) => f.file === 'broken.json').error).toBe('not valid JSON: line 1, column 31: expected a field name in double quotes, found the end of the text');
  });

  it('refuses a folder that does not exist', async () => {
    const r = await runCli(['conformance', '/nonexistent/fixtures']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_FIXTURE');
  });
});
