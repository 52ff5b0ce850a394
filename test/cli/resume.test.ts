// A run continued after --max-steps or SIGKILL ends exactly as a run never
// stopped: the same weightsSha256 and the same metrics.jsonl (less the
// wall-clock seconds), with --resume DIR or with the same command again
// (--auto-resume, as a restarted container runs it).
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastJson, metricsOf, runCli, smallCnnConfig, smallMlpConfig, startCli, tempDir, writeJson } from '../helpers/cli.js';

async function trainJson(args: string[]): Promise<Record<string, any>> {
  const r = await runCli(['train', '--json', '--workers', '0', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return { ...lastJson(r.stdout), stderr: r.stderr };
}

describe('resuming a run stopped by --max-steps', () => {
  const dir = tempDir();
  // 20 steps per epoch, 2 epochs.
  const config = writeJson(dir, 'run.json', smallMlpConfig({
    data: { type: 'mnist', view: 'flat', trainLimit: 640, testLimit: 200 }, batchSize: 32, microShards: 4, epochs: 2,
  }));

  it('--resume with a later --max-steps, then to the end: the metrics and weights of the uninterrupted runs', async () => {
    const [full, upTo30] = await Promise.all([
      trainJson(['--config', config, '--out', join(dir, 'full')]),
      trainJson(['--config', config, '--out', join(dir, 'up-to-30'), '--max-steps', '30']),
    ]);
    const out = join(dir, 'stopped');
    await trainJson(['--config', config, '--out', out, '--max-steps', '10']);
    expect(metricsOf(out).map((m) => [m.epoch, m.step])).toEqual([[1, 10]]);

    const to30 = await trainJson(['--resume', out, '--max-steps', '30']);
    expect(to30.stderr).toMatch(/resuming at step 10/);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'up-to-30')));
    expect(metricsOf(out).map((m) => [m.epoch, m.step])).toEqual([[1, 20], [2, 30]]);
    expect(to30.weightsSha256).toBe(upTo30.weightsSha256);

    // config.json holds the first invocation's maxSteps (10); 0 lifts it.
    const toEnd = await trainJson(['--resume', out, '--max-steps', '0']);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'full')));
    expect(toEnd.weightsSha256).toBe(full.weightsSha256);
    expect(toEnd.trainLoss).toBe(full.trainLoss);
  });

  it('--auto-resume: the same command starts the run, continues it, and is a no-op once it is done', async () => {
    const [full, upTo10] = await Promise.all([
      trainJson(['--config', config, '--out', join(dir, 'auto-full')]),
      trainJson(['--config', config, '--out', join(dir, 'auto-up-to-10'), '--max-steps', '10']),
    ]);
    const out = join(dir, 'auto');
    const command = ['--config', config, '--out', out, '--auto-resume'];
    const first = await trainJson([...command, '--max-steps', '10']);
    expect(first.stderr).not.toMatch(/resuming/);
    const again = await trainJson([...command, '--max-steps', '10']);
    expect(again.stderr).toMatch(/resuming at step 10/);
    expect(again.weightsSha256).toBe(upTo10.weightsSha256);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'auto-up-to-10')));

    const rest = await trainJson(command);
    expect(rest.stderr).toMatch(/resuming at step 10/);
    expect(rest.weightsSha256).toBe(full.weightsSha256);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'auto-full')));
  });

  it('--auto-resume refuses a folder of another config\'s run, or one of other files; --force starts over there', async () => {
    const out = join(dir, 'other');
    await trainJson(['--config', config, '--out', out, '--max-steps', '2']);
    const other = writeJson(dir, 'other.json', smallMlpConfig({ seed: 99, maxSteps: 2 }));
    const refused = await runCli(['train', '--config', other, '--out', out, '--auto-resume']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`dptrain: error [DPT_ERR_CHECKPOINT]: --out ${out} (--auto-resume): the checkpoint here was written by another config`);
    const forced = await trainJson(['--config', other, '--out', out, '--auto-resume', '--force']);
    expect(forced.stderr).not.toMatch(/resuming/);
    expect(forced.steps).toBe(2);
    const notRun = join(dir, 'not-a-run');
    mkdirSync(notRun);
    writeJson(notRun, 'x.json', {});
    const r = await runCli(['train', '--config', config, '--out', notRun, '--auto-resume']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`dptrain: error [DPT_ERR_OUTPUT]: --out ${notRun}: is not empty (x.json); add --force`);
  });
});

describe('--auto-resume after SIGKILL', () => {
  it('the same command again continues from the last checkpoint to the uninterrupted run\'s weights and metrics', async () => {
    const dir = tempDir();
    // 20 steps per epoch, 1,000 steps: the kill at the step-100 checkpoint lands long before the end.
    const config = writeJson(dir, 'long.json', smallMlpConfig({
      data: { type: 'mnist', view: 'flat', trainLimit: 640, testLimit: 100 }, batchSize: 32, microShards: 4, epochs: 50, checkpointEvery: 100,
    }));
    const reference = trainJson(['--config', config, '--out', join(dir, 'ref')]);
    const out = join(dir, 'run');
    const command = ['train', '--config', config, '--out', out, '--auto-resume', '--workers', '0', '--json'];
    const run = startCli(command);
    await run.stderrMatches(/checkpoint: step 100 /);
    run.child.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'model.dptmodel'))).toBe(false);

    const again = await runCli(command);
    expect(again.code, again.stderr).toBe(0);
    const resumedAt = Number(/resuming at step (\d+)/.exec(again.stderr)?.[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(100);
    expect(resumedAt).toBeLessThan(1000);
    expect(lastJson(again.stdout).weightsSha256).toBe((await reference).weightsSha256);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'ref')));
  });
});

describe('an Adam CNN on worker threads after SIGKILL', () => {
  it('--resume continues from the last checkpoint, Adam\'s moments and update count included, to the uninterrupted run\'s weights', async () => {
    const dir = tempDir();
    // 10 steps per epoch, 300 steps, a checkpoint every 20.
    const config = writeJson(dir, 'cnn.json', smallCnnConfig({ epochs: 30, checkpointEvery: 20 }));
    const reference = trainJson(['--config', config, '--out', join(dir, 'ref')]);
    const out = join(dir, 'run');
    const run = startCli(['train', '--config', config, '--out', out, '--workers', '2', '--json']);
    await run.stderrMatches(/checkpoint: step 60 /);
    run.child.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');

    const again = await runCli(['train', '--resume', out, '--workers', '2', '--json']);
    expect(again.code, again.stderr).toBe(0);
    const resumedAt = Number(/resuming at step (\d+)/.exec(again.stderr)?.[1]);
    expect(resumedAt).toBeGreaterThanOrEqual(60);
    expect(resumedAt).toBeLessThan(300);
    expect(lastJson(again.stdout).weightsSha256).toBe((await reference).weightsSha256);
    expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'ref')));
  });
});
