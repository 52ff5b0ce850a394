// Ctrl-C always works: real SIGINT and SIGTERM to real `dptrain train`
// processes in every engine and phase: steps in the coordinator's own
// thread (the MLP, the LSTM and the CSV example, --workers 0), the default
// engine, a coordinator listening for network workers with none connected
// (a refused one before), and with a `dptrain worker` training. Each must
// exit 130 (SIGINT) or 143 (SIGTERM) within 2 s of the signal, print the
// resume line last, and `--resume` must end on the weights of the run never
// stopped. The signal goes when the run has printed a line that says it is
// in the phase under test (its first epoch's line, "waiting for 1 worker"),
// never after a sleep; the runs are long enough that it lands mid-run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lastJson, ROOT, runCli, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, spawnCli, startCoordinator, startWorker, type Proc } from '../helpers/procs.js';

const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;
const dir = tempDir('dptrain-stop-');
const example = (name: string) => JSON.parse(readFileSync(join(ROOT, 'examples', `${name}.json`), 'utf8')) as Record<string, any>;

/** The MNIST MLP of the default config on 2,048 digits, 20 epochs (~4 s in one thread). */
const MLP = writeJson(dir, 'mlp.json', { ...example('mnist-mlp'), data: { type: 'mnist', view: 'flat', trainLimit: 2048, testLimit: 256 }, epochs: 20 });
/** The row LSTM of the example on 256 digits, 20 epochs. */
const LSTM = writeJson(dir, 'lstm.json', { ...example('mnist-lstm'), data: { type: 'mnist', view: 'rows', trainLimit: 256, testLimit: 100 }, epochs: 20 });
/** The CSV example, 600 epochs of its tiny steps (a checkpoint each). */
const csvExample = example('csv-blobs');
const CSV = writeJson(dir, 'csv.json', { ...csvExample, data: { ...csvExample.data, train: join(ROOT, 'examples', 'data', 'blobs.csv') }, epochs: 600 });

const references = new Map<string, Promise<string>>();
/** weightsSha256 of the config's run never stopped (--workers 0: every engine gives these bits). */
function reference(config: string): Promise<string> {
  if (!references.has(config)) {
    references.set(config, runCli(['train', '--config', config, '--out', join(dir, `ref-${references.size}`), '--workers', '0', '--json']).then((r) => {
      expect(r.code, r.stderr).toBe(0);
      return lastJson(r.stdout).weightsSha256 as string;
    }));
  }
  return references.get(config)!;
}

/** Signals `proc` (once `ready` resolved) and waits for its exit: the code, the ms from the signal to the exit, the output. */
async function signalAndWait(proc: Proc, signal: 'SIGINT' | 'SIGTERM'): Promise<{ code: number | null; ms: number }> {
  const t0 = performance.now();
  proc.kill(signal);
  const { code } = await proc.exited;
  return { code, ms: performance.now() - t0 };
}

/** The stopped run's output ends with the resume line; --resume (threads or not) ends on the reference's weights. */
async function expectStoppedAndResumable(out: string, output: string, config: string): Promise<void> {
  const last = output.trimEnd().split('\n').pop()!;
  expect(last, output).toMatch(new RegExp(`^dptrain: interrupted at step \\d+; resume with: npx dptrain train --resume ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`));
  const resumed = await runCli(['train', '--resume', out, '--workers', '0', '--json']);
  expect(resumed.code, resumed.stderr).toBe(0);
  expect(lastJson(resumed.stdout).weightsSha256).toBe(await reference(config));
}

afterEach(killAll);

describe('a stop request in every engine: exit 130/143 within 2 s, the resume line, --resume ends as the run never stopped', () => {
  const cases: [string, string, string[]][] = [['the MLP', MLP, ['--workers', '0']], ['the LSTM', LSTM, ['--workers', '0']], ['the CSV example', CSV, ['--workers', '0']]];
  for (const [what, config, args] of cases) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`${signal} to ${what} in the coordinator's thread`, async () => {
        const out = join(dir, `${what.replace(/\W+/g, '-')}-${signal}`);
        const run = spawnCli(['train', '--config', config, '--out', out, ...args], {}, what);
        await run.waitFor(/^epoch 1 \(step/m);
        const { code, ms } = await signalAndWait(run, signal);
        expect(code, run.out()).toBe(SIGNAL_EXIT[signal]);
        expect(ms, run.out()).toBeLessThan(2000);
        expect(run.out()).toContain(`dptrain: ${signal}: stopping after a checkpoint`);
        await expectStoppedAndResumable(out, run.out(), config);
      });
    }
  }

  it('SIGINT to the default engine (no worker count), wherever it computes', async () => {
    const out = join(dir, 'default-SIGINT');
    const run = spawnCli(['train', '--config', MLP, '--out', out], {}, 'default');
    await run.waitFor(/^epoch 1 \(step/m);
    const { code, ms } = await signalAndWait(run, 'SIGINT');
    expect(code, run.out()).toBe(130);
    expect(ms, run.out()).toBeLessThan(2000);
    await expectStoppedAndResumable(out, run.out(), MLP);
  });

  it('SIGINT to a coordinator waiting for workers (a refused one came and went): exit 130 at once, resumable', async () => {
    const out = join(dir, 'listen-waiting');
    const c = await startCoordinator(['--config', MLP, '--out', out], { DPTRAIN_TOKEN: 'right' });
    await c.proc.waitFor(/waiting for 1 worker \(0 connected\)/);
    const refused = startWorker(c.url, [], { DPTRAIN_TOKEN: 'wrong' });
    await c.proc.waitFor(/refused a worker .*: wrong token/);
    await refused.exited;
    const { code, ms } = await signalAndWait(c.proc, 'SIGINT');
    expect(code, c.proc.out()).toBe(130);
    expect(ms, c.proc.out()).toBeLessThan(2000);
    expect(c.proc.out()).not.toMatch(/^training: /m);
    await expectStoppedAndResumable(out, c.proc.out(), MLP);
  });

  it('SIGTERM to a coordinator training with a `dptrain worker`: exit 143 within 2 s, resumable', async () => {
    const out = join(dir, 'listen-training');
    const c = await startCoordinator(['--config', MLP, '--out', out], { DPTRAIN_TOKEN: 't' });
    const worker = startWorker(c.url, ['--threads', '1'], { DPTRAIN_TOKEN: 't' });
    await c.proc.waitFor(/^epoch 1 \(step/m);
    const { code, ms } = await signalAndWait(c.proc, 'SIGTERM');
    expect(code, c.proc.out()).toBe(143);
    expect(ms, c.proc.out()).toBeLessThan(2000);
    // The worker is told the coordinator stops, and goes on waiting for the resumed run (it is killed after).
    await expectStoppedAndResumable(out, c.proc.out(), MLP);
    worker.kill('SIGKILL');
  });
});

describe('the API\'s signal in the coordinator\'s thread', () => {
  it('an abort from a timer stops an in-thread run within a step', async () => {
    const { train } = await import('../../coordinator/api/train.js');
    const controller = new AbortController();
    const out = join(dir, 'api');
    let stepsAtAbort = -1;
    let lastStep = 0;
    const started = performance.now();
    setTimeout(() => { stepsAtAbort = lastStep; controller.abort(); }, 500);
    const r = await train({
      config: CSV, workers: 0, out, signal: controller.signal,
      onProgress: (e) => { if (e.type === 'step') lastStep = e.step; },
    });
    expect(r.status).toBe('interrupted');
    expect(performance.now() - started).toBeLessThan(2500);
    // Within the step in flight when the timer fired (and the 1 ms between turns of the event loop).
    if (r.status === 'interrupted') expect(r.step - stepsAtAbort).toBeLessThanOrEqual(100);
  });
});
