// SIGINT and SIGTERM to a training run (real processes, real threads): the
// step in flight is abandoned, a checkpoint written, the run says how to
// resume and exits 130 / 143; `--resume` then ends with the weights (and
// the metrics) of a run never stopped.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastJson, metricsOf, runCli, smallMlpConfig, startCli, tempDir, writeJson } from '../helpers/cli.js';

describe('SIGINT / SIGTERM', () => {
  const dir = tempDir();
  const config = writeJson(dir, 'run.json', smallMlpConfig({
    data: { type: 'mnist', view: 'flat', trainLimit: 640, testLimit: 200 }, batchSize: 32, microShards: 4, epochs: 2, checkpointEvery: 4,
  }));
  let reference: Promise<Record<string, any>> | undefined;
  const uninterrupted = () => {
    reference ??= runCli(['train', '--config', config, '--out', join(dir, 'ref'), '--workers', '0', '--json']).then((r) => {
      expect(r.code, r.stderr).toBe(0);
      return lastJson(r.stdout);
    });
    return reference;
  };

  for (const [signal, exitCode] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: checkpoint, "interrupted at step N; resume with ...", exit ${exitCode}; --resume ends as the uninterrupted run`, async () => {
      const out = join(dir, signal);
      // The one worker thread stalls in step 10 for a minute; its reassigned range waits behind it. The stall
      // line says the run is inside step 10, 9 steps done, the last checkpoint at step 8 (and 6 s before the
      // 4th attempt would give up): the signal lands in the middle of a step, with a step to lose.
      const run = startCli(['train', '--config', config, '--out', out, '--workers', '1', '--step-timeout-ms', '2000',
        '--chaos', 'stall:worker=0,step=10,ms=60000']);
      await run.stderrMatches(/step 10: stalled: 1 of 1 ranges missing after 2000 ms/);
      run.child.kill(signal);
      const r = await run.exited;
      expect(r.code, r.stderr).toBe(exitCode);
      expect(r.stderr).toContain(`dptrain: ${signal}: stopping after a checkpoint`);
      expect(r.stderr).toContain(`checkpoint: step 9 -> ${join(out, 'checkpoint.msgpack')}\n`);
      expect(r.stderr.trimEnd().split('\n').pop()).toBe(`dptrain: interrupted at step 9; resume with: npx dptrain train --resume ${out}`); // a clone: npx finds the bin
      expect(r.stdout).toBe('');

      const resumed = await runCli(['train', '--resume', out, '--workers', '1', '--json']);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stderr).toMatch(/resuming at step 9/);
      expect(lastJson(resumed.stdout).weightsSha256).toBe((await uninterrupted()).weightsSha256);
      expect(metricsOf(out)).toEqual(metricsOf(join(dir, 'ref')));
    });
  }
});
