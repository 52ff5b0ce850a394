// The conformance fixtures (PyTorch / scikit-learn reference values) through
// the core with the WebAssembly kernels active, the same way
// `dptrain conformance` runs them: every case of every file must pass at the
// fixtures' tolerance (rtol 1e-4, atol 1e-5), LSTM and GRU included.
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFixtureFile } from '../../src/check/conformance/index.js';
import { activeKernelName, useKernels } from '../../src/tensor/setup.js';
import { FIXTURES_DIR, loadFixture } from '../helpers/fixtures.js';
import { newKernels } from './wasm-helpers.js';

beforeAll(() => useKernels(newKernels(256 * 1024 * 1024)));
afterAll(() => useKernels(null));

describe('conformance fixtures with the wasm kernels', () => {
  const files = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.json')).sort();
  it('finds the fixture files', () => {
    expect(files).toContain('lstm.json');
    expect(files).toContain('gru.json');
    expect(files).toContain('sgd_rnn.json');
  });
  for (const file of files) {
    it(file, () => {
      expect(activeKernelName()).toBe('wasm-simd');
      const r = runFixtureFile(file, loadFixture(file));
      const failures = r.results.filter((c) => !c.passed).map((c) => `${c.label}: ${c.failures.slice(0, 3).join('; ')}`);
      expect(failures).toEqual([]);
      expect(r.cases).toBeGreaterThan(0);
    });
  }
});
