// train() of the Node API (coordinator/api/train.ts) in this process: its
// options checked and named, progress as events, a stop through an
// AbortSignal and a resume that ends on the uninterrupted run's weights,
// the same weights on worker threads, and as the coordinator of a real
// `dptrain worker` process (listen).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { train, type TrainProgress, type TrainResult, type TrainSummary } from '../../coordinator/api/train.js';
import type { TrainConfigInput } from '../../coordinator/run/config.js';
import { useKernels } from '../../src/tensor/setup.js';
import { ROOT, tempDir } from '../helpers/cli.js';
import { killAll, startWorker } from '../helpers/procs.js';

const EXAMPLES = join(ROOT, 'examples');
/** The CSV example, 3 epochs (45 steps). */
const CONFIG: TrainConfigInput = { ...(JSON.parse(readFileSync(join(EXAMPLES, 'csv-blobs.json'), 'utf8')) as TrainConfigInput), epochs: 3 };

function finished(r: TrainResult): TrainSummary {
  if (r.status !== 'finished') throw new Error(`the run stopped at step ${r.step}`);
  return r;
}

afterEach(killAll);
afterAll(() => useKernels(null));

describe('train()', () => {
  let reference: TrainSummary;

  it('trains a config object in this thread, reports progress as events, and returns the model', async () => {
    const events: TrainProgress[] = [];
    reference = finished(await train({ config: CONFIG, baseDir: EXAMPLES, workers: 0, out: join(tempDir(), 'run'), onProgress: (e) => events.push(e) }));
    expect(reference.steps).toBe(45);
    expect(reference.workers).toBe(0);
    expect(events[0]).toEqual({ type: 'start', totalSteps: 45, firstStep: 0, workers: 0 });
    expect(events.filter((e) => e.type === 'step')).toHaveLength(45);
    const epochs = events.filter((e) => e.type === 'epoch');
    expect(epochs.map((e) => [e.epoch, e.step])).toEqual([[1, 15], [2, 30], [3, 45]]);
    expect(events.filter((e) => e.type === 'checkpoint')).toHaveLength(3);
    expect(reference.model.classNames).toEqual(['amber', 'cobalt', 'jade']);
    expect(reference.modelFile).toBe(join(reference.outDir, 'model.dptmodel'));
  });

  it('stops on its signal with a checkpoint, and resumes to the weights of the run never stopped', async () => {
    const out = join(tempDir(), 'run');
    const stop = new AbortController();
    const first = await train({
      config: CONFIG, baseDir: EXAMPLES, workers: 0, out, signal: stop.signal,
      onProgress: (e) => { if (e.type === 'step' && e.step === 20) stop.abort(); },
    });
    expect(first).toEqual({ status: 'interrupted', step: 20, outDir: out });
    const resumed = finished(await train({ resume: out, workers: 0 }));
    expect(resumed.weightsSha256).toBe(reference.weightsSha256);
  });

  it('trains on worker threads to the same weights', async () => {
    const threads = finished(await train({ config: CONFIG, baseDir: EXAMPLES, workers: 2, out: join(tempDir(), 'run') }));
    expect(threads.workers).toBe(2);
    expect(threads.weightsSha256).toBe(reference.weightsSha256);
  });

  it('coordinates a network worker with listen, to the same weights', async () => {
    let worker: ReturnType<typeof startWorker> | undefined;
    const notes: string[] = [];
    const summary = finished(await train({
      config: CONFIG, baseDir: EXAMPLES, workers: 0, out: join(tempDir(), 'run'), listen: '127.0.0.1:0', minWorkers: 1,
      onProgress: (e) => {
        if (e.type === 'note') notes.push(e.message);
        const m = e.type === 'note' ? /listening on (ws:\/\/127\.0\.0\.1:\d+\/ws)/.exec(e.message) : null;
        if (m !== null) worker = startWorker(m[1], ['--name', 'api-test']);
      },
    }));
    expect(worker).toBeDefined();
    // The worker's --name in the coordinator's log lines.
    expect(notes).toContainEqual(expect.stringMatching(/^worker p\d+ "api-test" \(\S+, 127\.0\.0\.1\) joined: /));
    expect(summary.workers).toBe(1);
    expect(summary.weightsSha256).toBe(reference.weightsSha256);
    expect(await worker!.exited).toEqual({ code: 0, signal: null });
  });

  it('refuses bad options with their names, as the command line does', async () => {
    await expect(train({ config: CONFIG, workers: 1.5 })).rejects.toMatchObject({
      code: 'DPT_ERR_USAGE', message: 'train options.workers: expected a whole number',
    });
    await expect(train({ config: CONFIG, worker: 2 } as never)).rejects.toMatchObject({
      code: 'DPT_ERR_USAGE', message: 'train options: unknown field "worker"; did you mean "workers"?',
    });
    await expect(train({ config: { ...CONFIG, epochs: 0 } })).rejects.toMatchObject({
      code: 'DPT_ERR_CONFIG', message: 'config: invalid config\nepochs: expected a positive whole number',
    });
    await expect(train({})).rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: expect.stringContaining('no config') });
    await expect(train({ config: CONFIG, resume: '/nonexistent', out: 'x' })).rejects.toMatchObject({
      code: 'DPT_ERR_USAGE', message: 'resume and out: give one (resume continues the run in its own folder)',
    });
    await expect(train({ config: CONFIG, minWorkers: 2 })).rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: 'minWorkers needs listen: "HOST:PORT"' });
    await expect(train({ config: CONFIG, autoResume: true })).rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: expect.stringMatching(/^autoResume needs out: "DIR"/) });
    await expect(train({ config: CONFIG, force: true, resume: '/nonexistent' })).rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: 'force starts a new run; it does not go with resume' });
    await expect(train({ resume: '/nonexistent' })).rejects.toMatchObject({
      code: 'DPT_ERR_CHECKPOINT', message: expect.stringMatching(/^resume: "\/nonexistent": no checkpoint here .*; pass the out folder of an earlier run$/),
    });
    await expect(train({ config: CONFIG, listen: '127.0.0.1:0', tokenFile: '/nonexistent' })).rejects.toMatchObject({
      code: 'DPT_ERR_USAGE', message: expect.stringMatching(/^tokenFile \/nonexistent: cannot read it/),
    });
    await expect(train({ config: CONFIG, listen: 'nope' })).rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: expect.stringMatching(/^listen must be HOST:PORT/) });
  });

  it('a second run into the same out: the advice names the options of train(), not the command line\'s', async () => {
    const out = join(tempDir(), 'run');
    finished(await train({ config: CONFIG, baseDir: EXAMPLES, out, workers: 0, maxSteps: 2 }));
    const again = train({ config: CONFIG, baseDir: EXAMPLES, out, workers: 0, maxSteps: 2 });
    await expect(again).rejects.toMatchObject({
      code: 'DPT_ERR_OUTPUT',
      message: expect.stringContaining(`out: ${JSON.stringify(out)}: holds a run (`),
    });
    const message = await again.catch((e: Error) => e.message);
    expect(message).toContain(`continue that run with resume: ${JSON.stringify(out)}, add force: true to start a new run in it`);
    expect(message).not.toContain('--');
  });
});
