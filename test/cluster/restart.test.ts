// A worker keeps its threads and dataset across a coordinator restart (the
// same session). The restarted coordinator numbers its weights versions from
// the start again: the worker must compute with the weights it is sent, not
// with an older copy its threads hold under the same number. Stopping at
// step 2 is the case where the numbers collide (the threads last computed
// step 1 with version 1; the resumed run sends step 2's weights as version 1).
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, startCoordinator, startWorker, summaryOf } from '../helpers/procs.js';

const dir = tempDir('dptrain-restart-');
const config = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 1 }));
afterEach(killAll);
afterAll(killAll);

it('a coordinator stopped at step 2 and resumed: its reconnected worker gives the --workers 0 weights', async () => {
  const runDir = join(dir, 'run');
  const c1 = await startCoordinator(['--json', '--config', config, '--out', runDir, '--step-timeout-ms', '0',
    '--chaos', 'stall:worker=0,step=2,ms=600000']);
  const w = startWorker(c1.url, ['--cache', join(dir, 'cache'), '--threads', '2']);
  await w.waitFor(/chaos: stalling task/);
  c1.proc.kill('SIGTERM');
  expect((await c1.proc.exited).code).toBe(143);
  expect(c1.proc.out()).toMatch(/interrupted at step 1;/);
  const c2 = await startCoordinator(['--json', '--resume', runDir], {}, c1.port);
  expect(await c2.proc.exited).toMatchObject({ code: 0 });
  expect((await w.exited).code).toBe(0);
  expect(w.out().match(/dataset [0-9a-f]{12}:/g)).toHaveLength(1); // the same threads served both coordinators
  const ref = await runCli(['train', '--json', '--quiet', '--config', config, '--out', join(dir, 'ref'), '--workers', '0']);
  expect(summaryOf(c2.proc).weightsSha256).toBe(lastJson(ref.stdout).weightsSha256);
});
