// The convolution, pooling, Adam and BatchNorm2d fixtures (test/fixtures/reference,
// sections 14 and 15 of its README) through the conformance runner with both
// kernel kinds, and proof that the runner reads what it claims to check.
import { afterAll, describe, expect, it } from 'vitest';
import { runFixtureFile } from '../../src/check/conformance/index.js';
import type { FixtureFile } from '../../src/check/fixture.js';
import { useKernels } from '../../src/tensor/setup.js';
import { loadFixture } from '../helpers/fixtures.js';
import { newKernels } from '../tensor/wasm-helpers.js';

const FILES = ['conv2d.json', 'pool2d.json', 'adam.json', 'batchnorm2d.json'];

afterAll(() => useKernels(null));

function failures(file: string, fixture: FixtureFile): string[] {
  const r = runFixtureFile(file, fixture);
  expect(r.cases).toBe(fixture.cases.length);
  return r.results.filter((c) => !c.passed).map((c) => `${c.label}: ${c.failures.slice(0, 3).join('; ')}`);
}

for (const kind of ['ts', 'wasm'] as const) {
  describe(`conformance with the ${kind} kernels`, () => {
    for (const file of FILES) {
      it(`${file}: every case within rtol 1e-4, atol 1e-5`, () => {
        useKernels(kind === 'wasm' ? newKernels(128 * 1024 * 1024) : null);
        expect(failures(file, loadFixture(file))).toEqual([]);
      });
    }
  });
}

describe('the runner checks what the files hold', () => {
  it('adam.json: every output is compared, the moments after step 2 included', () => {
    useKernels(null);
    const fixture = loadFixture('adam.json');
    const r = runFixtureFile('adam.json', fixture);
    const expected = fixture.cases.map((c) =>
      [...Object.values(c.outputs), ...Object.values(c.grads ?? {})].reduce((n, t) => n + t.data.length, 0));
    // Every output and gradient tensor is compared at least once (the _in_out copies aside, there are none here).
    r.results.forEach((res, i) => expect(res.compared).toBeGreaterThanOrEqual(expected[i]));
    const broken = structuredClone(fixture);
    broken.cases[0].outputs.fc_W_exp_avg_sq_after_step2.data[5] += 1e-3;
    expect(failures('adam.json', broken).join('\n')).toMatch(/outputs\.fc_W_exp_avg_sq_after_step2: worst ratio/);
  });

  it('adam.json: the optimizer comes from the config (AdamW run as Adam fails)', () => {
    const fixture = structuredClone(loadFixture('adam.json'));
    const adamw = fixture.cases.find((c) => c.config.optimizer === 'adamw')!;
    adamw.config.optimizer = 'adam';
    fixture.cases = [adamw];
    expect(failures('adam.json', fixture).join('\n')).toMatch(/outputs\.(params_after_step1|final|losses)/);
  });

  it('conv2d.json: the geometry comes from the config (a wrong stride fails)', () => {
    const fixture = structuredClone(loadFixture('conv2d.json'));
    const strided = fixture.cases.find((c) => (c.config.stride as number[])[0] === 2)!;
    strided.config.stride = [1, 1];
    fixture.cases = [strided];
    expect(failures('conv2d.json', fixture).length).toBe(1);
  });

  it('batchnorm2d.json: the running statistics of a trajectory are compared', () => {
    useKernels(null);
    const fixture = structuredClone(loadFixture('batchnorm2d.json'));
    fixture.cases = fixture.cases.filter((c) => c.op === 'trajectory').slice(0, 1);
    fixture.cases[0].outputs.final_bn_running_var.data[2] *= 1.001;
    expect(failures('batchnorm2d.json', fixture).join('\n')).toMatch(/outputs\.final_bn_running_var: worst ratio/);
  });

  it('batchnorm2d.json: ghost batch norm takes its micro-shards from config.workers (run as one shard, it fails)', () => {
    const fixture = structuredClone(loadFixture('batchnorm2d.json'));
    const ghost = fixture.cases.find((c) => c.op === 'trajectory' && c.config.workers === 3)!;
    expect(failures('batchnorm2d.json', { ...fixture, cases: [ghost] })).toEqual([]);
    ghost.config.workers = 1;
    expect(failures('batchnorm2d.json', { ...fixture, cases: [ghost] }).join('\n')).toMatch(/grads\.conv_W|outputs\.losses/);
  });
});
