import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, lastJson, runCli, tempDir } from '../helpers/cli.js';

describe('training on CSV data (real process)', () => {
  it('trains the example CSV config to a useful accuracy', async () => {
    const dir = tempDir();
    const r = await runCli(['train', '--config', join(ROOT, 'examples/csv-blobs.json'), '--out', join(dir, 'run'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson(r.stdout);
    expect(s.test.accuracy).toBeGreaterThan(0.9);
  });

  it('names the file, line and column of a bad row', async () => {
    const dir = tempDir();
    const lines = readFileSync(join(ROOT, 'examples/data/blobs.csv'), 'utf8').split('\n');
    lines[16] = lines[16].replace(/^[^,]+/, 'oops');
    writeFileSync(join(dir, 'blobs.csv'), lines.join('\n'));
    copyFileSync(join(ROOT, 'examples/csv-blobs.json'), join(dir, 'config.json'));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    config.data.train = 'blobs.csv';
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    const r = await runCli(['train', '--config', join(dir, 'config.json'), '--out', join(dir, 'run')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_DATASET');
    expect(r.stderr).toMatch(/blobs\.csv:17: column "feature_a": "oops" is not a number/);
  });

  // The data is checked before the engine is chosen: the error is the only line (no "workers: ..." first).
  const badCsv: [string, (lines: string[]) => string[] | null, RegExp][] = [
    ['a missing file', () => null, /^dptrain: error \[DPT_ERR_DATASET\]: .*blobs\.csv/],
    ['an empty cell', (lines) => { lines[5] = lines[5].replace(/^[^,]+/, ''); return lines; }, /^dptrain: error \[DPT_ERR_DATASET\]: .*blobs\.csv:6: column "feature_a"/],
    ['a text cell', (lines) => { lines[9] = lines[9].replace(/^[^,]+/, 'n/a'); return lines; }, /^dptrain: error \[DPT_ERR_DATASET\]: .*blobs\.csv:10: column "feature_a": "n\/a" is not a number/],
  ];
  for (const [what, edit, message] of badCsv) {
    it(`${what}: one error line, and nothing about the engine before it`, async () => {
      const dir = tempDir();
      const edited = edit(readFileSync(join(ROOT, 'examples/data/blobs.csv'), 'utf8').split('\n'));
      if (edited !== null) writeFileSync(join(dir, 'blobs.csv'), edited.join('\n'));
      const config = JSON.parse(readFileSync(join(ROOT, 'examples/csv-blobs.json'), 'utf8'));
      config.data.train = 'blobs.csv';
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      const r = await runCli(['train', '--config', join(dir, 'config.json'), '--out', join(dir, 'run')]);
      expect(r.code).toBe(1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    });
  }

  it('resumes a CSV run from its folder alone: config.json holds the data files\' absolute paths', async () => {
    const dir = tempDir();
    const config = join(ROOT, 'examples/csv-blobs.json');
    const whole = await runCli(['train', '--config', config, '--out', join(dir, 'whole'), '--workers', '0', '--json', '--quiet']);
    expect(whole.code, whole.stderr).toBe(0);
    const cut = await runCli(['train', '--config', config, '--out', join(dir, 'cut'), '--workers', '0', '--max-steps', '5', '--quiet']);
    expect(cut.code, cut.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'cut', 'config.json'), 'utf8')).data.train).toBe(join(ROOT, 'examples/data/blobs.csv'));
    const resumed = await runCli(['train', '--resume', join(dir, 'cut'), '--max-steps', '0', '--json', '--quiet'], { cwd: dir });
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(lastJson(resumed.stdout).weightsSha256).toBe(lastJson(whole.stdout).weightsSha256);
  });
});
