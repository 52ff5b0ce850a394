// `--workers N` through the real CLI: the same weights whatever N, faults
// injected at fixed steps, SIGKILL + resume, refusals before training.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastJson, ROOT, runCli, smallCnnBnConfig, smallCnnConfig, smallMlpConfig, startCli, tempDir, writeJson } from '../helpers/cli.js';

/** Small, fast variants of the example families. */
const CONFIGS: Record<string, Record<string, unknown>> = {
  // Adam's moments and update count in the threads' step loop; AdamW's decay on the weights only.
  cnnAdam: smallCnnConfig(),
  // Batch normalization per channel: statistics per micro-shard (32 images in 6), running statistics in the step loop.
  cnnBn: smallCnnBnConfig(),
  mlpAdamW: smallMlpConfig({
    data: { type: 'mnist', view: 'flat', trainLimit: 320, testLimit: 200 }, batchSize: 40, microShards: 7,
    optimizer: { type: 'adamw', lr: 0.003, betas: [0.85, 0.99], weightDecay: 0.05 }, schedule: { type: 'cosine' },
  }),
  mlp: smallMlpConfig({ data: { type: 'mnist', view: 'flat', trainLimit: 320, testLimit: 200 }, batchSize: 40, microShards: 7 }),
  lstm: smallMlpConfig({
    data: { type: 'mnist', view: 'rows', trainLimit: 96, testLimit: 64 },
    model: { inputShape: [28, 28], layers: [{ type: 'lstm', units: 8 }, { type: 'dense', units: 10 }] },
    optimizer: { lr: 0.1, momentum: 0.9 }, batchSize: 24, microShards: 6,
  }),
  bnDropout: smallMlpConfig({
    data: { type: 'mnist', view: 'flat', trainLimit: 320, testLimit: 200 },
    model: {
      inputShape: [784],
      layers: [
        { type: 'dense', units: 24, kernelInit: 'he_uniform', l2: 0.0001 },
        { type: 'batchnorm', momentum: 0.1 },
        { type: 'relu' },
        { type: 'dropout', rate: 0.2 },
        { type: 'dense', units: 10, l2: 0.0001 },
      ],
    },
    schedule: { type: 'cosine' }, batchSize: 40, microShards: 8,
  }),
};

async function trainJson(args: string[]): Promise<Record<string, any>> {
  const r = await runCli(['train', '--json', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return lastJson(r.stdout);
}

describe('dptrain train --workers (real processes, real threads)', () => {
  const dir = tempDir();
  const files = Object.fromEntries(Object.entries(CONFIGS).map(([name, cfg]) => [name, writeJson(dir, `${name}.json`, cfg)]));
  const hashes: Record<string, string> = {};

  for (const name of Object.keys(CONFIGS)) {
    it(`${name}: --workers 0, 1, 2 and 3 give the same weightsSha256`, async () => {
      const runs = await Promise.all([0, 1, 2, 3].map((w) => trainJson(['--config', files[name], '--out', join(dir, `${name}-w${w}`), '--workers', String(w)])));
      expect(runs.map((r) => r.workers)).toEqual([0, 1, 2, 3]);
      for (const r of runs) expect(r.weightsSha256).toBe(runs[0].weightsSha256);
      hashes[name] = runs[0].weightsSha256;
    });
  }

  it('the pure-TypeScript kernels (--kernels ts) give the WebAssembly kernels\' bits on models without recurrent layers', async () => {
    for (const name of ['mlp', 'bnDropout', 'cnnAdam', 'cnnBn']) {
      const ts = await trainJson(['--config', files[name], '--out', join(dir, `${name}-ts`), '--workers', '2', '--kernels', 'ts']);
      expect(ts.kernels).toBe('typescript');
      expect(ts.weightsSha256).toBe(hashes[name] ?? (await trainJson(['--config', files[name], '--out', join(dir, `${name}-wasm`), '--workers', '0'])).weightsSha256);
    }
  });

  it('a thread that crashes, throws or stalls mid-step changes nothing: same weights, faults named on stderr', async () => {
    const r = await runCli(['train', '--json', '--config', files.mlp, '--out', join(dir, 'chaos'), '--workers', '2', '--step-timeout-ms', '1000',
      '--chaos', 'crash:worker=1,step=2;throw:worker=0,step=4;stall:worker=0,step=6,ms=3000']);
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r.stdout).weightsSha256).toBe(hashes.mlp ?? (await trainJson(['--config', files.mlp, '--out', join(dir, 'mlp-ref'), '--workers', '0'])).weightsSha256);
    expect(r.stderr).toMatch(/step 2: worker t1 \(micro-shards 4-6\) failed: worker exited with code: 70; reassigning \(attempt 2 of 4\)/);
    expect(r.stderr).toMatch(/step 4: worker t0 \(micro-shards 0-3\) failed: chaos: task \d+ throws/);
    expect(r.stderr).toMatch(/step 6: stalled: 1 of 2 ranges missing after 1000 ms: worker t0 \(micro-shards 0-3, attempt 1\)/);
    // Chaos belongs to one invocation: it is not saved with the run.
    expect(JSON.parse(readFileSync(join(dir, 'chaos', 'config.json'), 'utf8')).chaos).toBeUndefined();
  });

  it('without a worker count, the run measures threads and its own thread, keeps the faster, says why, and gets the same weights', async () => {
    // 8 epochs of 50 steps: the choice comes after 12 steps (short steps), or once the threads have started
    // (the steps go on meanwhile), warmed and measured (engines/auto.ts).
    const file = writeJson(dir, 'auto.json', {
      ...CONFIGS.bnDropout, data: { type: 'mnist', view: 'flat', trainLimit: 2000, testLimit: 200 }, epochs: 8,
    });
    const [auto, single] = await Promise.all([
      runCli(['train', '--json', '--config', file, '--out', join(dir, 'auto')]),
      trainJson(['--config', file, '--out', join(dir, 'auto-w0'), '--workers', '0']),
    ]);
    expect(auto.code, auto.stderr).toBe(0);
    const summary = lastJson(auto.stdout);
    expect(summary.weightsSha256).toBe(single.weightsSha256);
    expect([0, availableParallelism()]).toContain(summary.workersChoice.workers);
    expect(summary.workers).toBe(summary.workersChoice.workers);
    expect(summary.workersChoice.reason).toMatch(new RegExp("^(at step \\d+, )?a step took [\\d.]+ ms (on \\d+ worker threads? and [\\d.]+ ms in the coordinator's thread \\(median of \\d+ steps each\\)|" +
      "in the coordinator's thread \\(median of 8\\), too short for \\d+ worker threads? to gain .*\\)): (switching to )?training (on the \\d+ threads|in the coordinator's thread \\(as --workers 0\\))$"));
    expect(auto.stderr).toContain(`workers: ${summary.workersChoice.reason}`);
    // Where it trains is said once measured, not before.
    expect(auto.stderr).toMatch(/^training: 400 steps, on worker threads or in the coordinator's thread, whichever measures faster$/m);
  });

  it('without a worker count, a tiny model trains in the coordinator\'s thread and never starts threads, to the same weights', async () => {
    const blobs = join(ROOT, 'examples', 'csv-blobs.json');
    const [auto, single] = await Promise.all([
      trainJson(['--config', blobs, '--out', join(dir, 'blobs-auto'), '--max-steps', '20']),
      trainJson(['--config', blobs, '--out', join(dir, 'blobs-w0'), '--max-steps', '20', '--workers', '0']),
    ]);
    expect(auto.weightsSha256).toBe(single.weightsSha256);
    expect(auto.workers).toBe(0);
    expect(auto.workerStats).toEqual([]);
    expect(auto.workersChoice).toEqual({
      workers: 0,
      reason: 'the model has 131 parameters and batches of 32 rows, steps too small for worker threads to gain: training in the coordinator\'s thread (as --workers 0)',
    });
  });

  it('the command line wins over the config file; the config can set workers', async () => {
    const file = writeJson(dir, 'with-workers.json', { ...CONFIGS.mlp, workers: 3, maxSteps: 2 });
    expect((await trainJson(['--config', file, '--out', join(dir, 'cfg-w')])).workers).toBe(3);
    expect((await trainJson(['--config', file, '--out', join(dir, 'cli-w'), '--workers', '1'])).workers).toBe(1);
  });
});

describe('SIGKILL and --resume', () => {
  it('a run killed with SIGKILL mid-step resumes (on another worker count) to the uninterrupted run\'s weights', async () => {
    const dir = tempDir();
    const config = writeJson(dir, 'kill.json', smallMlpConfig({
      data: { type: 'mnist', view: 'flat', trainLimit: 640, testLimit: 200 }, batchSize: 32, microShards: 4, epochs: 2, checkpointEvery: 4,
    }));
    const reference = await trainJson(['--config', config, '--out', join(dir, 'ref'), '--workers', '0']);
    expect(reference.steps).toBe(40);

    // The stall holds step 10 for a minute (no step timeout): the kill lands mid-step, after the step-8 checkpoint.
    const out = join(dir, 'killed');
    const run = startCli(['train', '--config', config, '--out', out, '--workers', '2', '--step-timeout-ms', '0',
      '--chaos', 'stall:worker=0,step=10,ms=60000']);
    await run.stderrMatches(/checkpoint: step 8 /);
    run.child.kill('SIGKILL');
    expect((await run.exited).signal).toBe('SIGKILL');
    expect(existsSync(join(out, 'model.dptmodel'))).toBe(false);

    const resumed = await runCli(['train', '--json', '--resume', out, '--workers', '3']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming at step 8/);
    const summary = lastJson(resumed.stdout);
    expect(summary.steps).toBe(40);
    expect(summary.workers).toBe(3);
    expect(summary.weightsSha256).toBe(reference.weightsSha256);
  });
});

describe('bad input is refused before training, naming the problem', () => {
  const dir = tempDir();
  const config = writeJson(dir, 'small.json', smallMlpConfig({ maxSteps: 2 }));

  it('--workers that is not a whole number', async () => {
    for (const bad of ['1.5', '-1', 'two']) {
      const r = await runCli(['train', '--config', config, '--workers', bad, '--out', join(dir, 'x')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--workers must be a whole number >= 0, got "${bad}"`);
    }
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });

  it('a config field workers that is not a whole number', async () => {
    const r = await runCli(['train', '--config', writeJson(dir, 'w.json', smallMlpConfig({ workers: 1.5 })), '--out', join(dir, 'y')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_CONFIG');
    expect(r.stderr).toMatch(/workers: expected a whole number/);
  });

  it('a --resume folder without a checkpoint', async () => {
    const empty = tempDir();
    const r = await runCli(['train', '--resume', empty]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_CHECKPOINT');
    expect(r.stderr).toContain(`--resume ${empty}: no checkpoint here`);
  });

  it('a checkpoint written by another config', async () => {
    const run = join(dir, 'run');
    await trainJson(['--config', config, '--out', run, '--workers', '0']);
    const other = writeJson(dir, 'other.json', smallMlpConfig({ maxSteps: 2, optimizer: { lr: 0.01, momentum: 0.9 } }));
    const r = await runCli(['train', '--config', other, '--resume', run]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('DPT_ERR_CHECKPOINT');
    expect(r.stderr).toMatch(/the checkpoint was written by another config/);
    expect(r.stderr).not.toMatch(/training:/);
  });

  it('a checkpoint computed with the other kernels, and a kernel kind that does not exist', async () => {
    const run = join(dir, 'run-kernels');
    await trainJson(['--config', config, '--out', run, '--workers', '0', '--kernels', 'ts']);
    const r = await runCli(['train', '--resume', run, '--kernels', 'wasm']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/DPT_ERR_CHECKPOINT.*computed with the typescript kernels.*resume with --kernels ts/);
    const ok = await runCli(['train', '--json', '--resume', run, '--kernels', 'ts']);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await runCli(['train', '--config', config, '--kernels', 'gpu']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--kernels must be 'wasm' or 'ts', got 'gpu'/);
    const env = await runCli(['train', '--config', config], { env: { DPTRAIN_KERNELS: 'fast' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/DPT_ERR_USAGE.*\$DPTRAIN_KERNELS must be 'wasm' or 'ts', got 'fast'/);
  });

  it('a bad --chaos spec, or one naming a worker slot that does not exist', async () => {
    const a = await runCli(['train', '--config', config, '--chaos', 'explode:worker=0,step=1']);
    expect(a.code).toBe(2);
    expect(a.stderr).toContain('--chaos: "explode:worker=0,step=1": unknown fault kind "explode"');
    const b = await runCli(['train', '--config', config, '--workers', '2', '--chaos', 'crash:worker=2,step=1', '--out', join(dir, 'z')]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('DPT_ERR_USAGE');
    expect(b.stderr).toContain('crash names worker=2, but there are only 2 worker slots');
    expect(existsSync(join(dir, 'z'))).toBe(false);
  });
});

describe('dptrain verify', () => {
  const dir = tempDir();
  const config = writeJson(dir, 'bn.json', CONFIGS.bnDropout);

  it('reports agreement after every step (exit 0)', async () => {
    const r = await runCli(['verify', '--config', config, '--workers', '3', '--steps', '5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^verify: 5 steps, 1 thread vs 3 worker threads: the weights agree bit for bit after every step \(sha256 [0-9a-f]{64}\)$/m);
  });

  it('names the first step and parameter that differ (exit 1): a corrupt worker injected with --chaos', async () => {
    const r = await runCli(['verify', '--config', config, '--workers', '2', '--steps', '6', '--json', '--chaos', 'corrupt:worker=1,step=3,index=123']);
    expect(r.code, r.stderr).toBe(1);
    const report = lastJson(r.stdout);
    expect(report.agree).toBe(false);
    expect(report.firstDifference).toMatchObject({ step: 3, param: 'layers.0.dense.W[123]', flatIndex: 123 });
    expect(report.firstDifference.single).not.toBe(report.firstDifference.parallel);
    const text = await runCli(['verify', '--config', config, '--workers', '2', '--steps', '6', '--chaos', 'corrupt:worker=0,step=2,index=7']);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/the weights differ after step 2 \(steps 1-1 agreed\): first at layers\.0\.dense\.W\[7\]/);
  });
});
