// The package's examples by name, and the hint when a relative path names one
// that is not where it was looked for (a project that installed the package).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLE_NAMES, examples, examplesDir, packageExampleFor } from '../../coordinator/run/examples.js';
import { train } from '../../coordinator/api/train.js';
import { ROOT, runCli, tempDir } from '../helpers/cli.js';

describe('examples', () => {
  it('names every example config of the package, as absolute paths', () => {
    expect(examplesDir).toBe(join(ROOT, 'examples'));
    const files = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    expect([...EXAMPLE_NAMES].sort()).toEqual(files.sort());
    for (const name of EXAMPLE_NAMES) expect(examples[name]).toBe(join(ROOT, 'examples', `${name}.json`));
    expect(Object.isFrozen(examples)).toBe(true);
  });

  it('packageExampleFor: the package\'s copy of a relative path that names an example', () => {
    expect(packageExampleFor('examples/csv-blobs.json')).toBe(examples['csv-blobs']);
    expect(packageExampleFor('./examples/data/blobs.csv')).toBe(join(examplesDir, 'data', 'blobs.csv'));
    expect(packageExampleFor('mnist-mlp.json')).toBe(examples['mnist-mlp']);
    expect(packageExampleFor('examples/nope.json')).toBeNull();
    expect(packageExampleFor('/abs/examples/csv-blobs.json')).toBeNull();
    expect(packageExampleFor('examples')).toBeNull();
  });

  it('train({ config: examples[name] }) runs from any folder; a relative config path resolves against baseDir', async () => {
    const r = await train({ config: examples['csv-blobs'], workers: 0, maxSteps: 2, out: join(tempDir(), 'run') });
    expect(r.status).toBe('finished');
    const viaBase = await train({ config: 'csv-blobs.json', baseDir: examplesDir, workers: 0, maxSteps: 2, out: join(tempDir(), 'run') });
    expect(viaBase.status).toBe('finished');
  });

  it('the command line, from a folder without examples/: the error says where the package\'s example is', async () => {
    const r = await runCli(['train', '--config', 'examples/csv-blobs.json'], { cwd: tempDir() });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^dptrain: error \[DPT_ERR_CONFIG\]: examples\/csv-blobs\.json: cannot read the config file \(ENOENT[^)]*\); the package's example is (.*)\n$/);
    expect(r.stderr).toContain(`the package's example is ${join(ROOT, 'examples', 'csv-blobs.json')}`);
  });
});
