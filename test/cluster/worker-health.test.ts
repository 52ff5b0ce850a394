// `dptrain worker --health-listen`: the worker's /healthz and /readyz, and
// the image's HEALTHCHECK script reading them, with a real coordinator and
// a real worker process. Every step waits on a line a process prints.
import { freePort } from '../helpers/ports.js';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { healthcheck } from '../helpers/healthcheck.js';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, startCoordinator, startWorker, summaryOf } from '../helpers/procs.js';

const dir = tempDir('dptrain-worker-health-');
const config = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 1 }));
const ENV = { DPTRAIN_TOKEN: 'health-test-token' };

afterEach(killAll);
afterAll(killAll);

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describe('dptrain worker --health-listen', () => {
  it('/healthz answers while the worker lives; /readyz is 200 only while it is connected and ready', async () => {
    const runDir = join(dir, 'run');
    // Step 2 holds still (no step timeout) until the coordinator is stopped.
    const c1 = await startCoordinator(['--json', '--config', config, '--out', runDir, '--step-timeout-ms', '0',
      '--chaos', 'stall:worker=0,step=2,ms=600000'], ENV);
    const w = startWorker(c1.url, ['--cache', join(dir, 'cache'), '--health-listen', `127.0.0.1:${await freePort()}`], ENV);
    const base = (await w.waitFor(/health on (http:\/\/127\.0\.0\.1:\d+) /))[1];
    await w.waitFor(/chaos: stalling task/);
    expect(await get(`${base}/readyz`)).toEqual({ status: 200, body: 'ready\n' });
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
    expect(await healthcheck(w.child.pid!)).toEqual({ code: 0, out: 'healthy\n' });

    c1.proc.kill('SIGTERM');
    expect((await c1.proc.exited).code).toBe(143);
    await w.waitFor(/reconnecting in/);
    // Alive, looking for its coordinator: not ready, and says why.
    expect(await get(`${base}/readyz`)).toEqual({ status: 503, body: 'connecting\n' });
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: 'ok\n' });
    expect(await healthcheck(w.child.pid!)).toEqual({ code: 0, out: 'healthy\n' });

    const c2 = await startCoordinator(['--json', '--config', config, '--out', runDir, '--auto-resume'], ENV, c1.port);
    expect(await c2.proc.exited).toMatchObject({ code: 0 });
    expect((await w.exited).code).toBe(0);
    const ref = await runCli(['train', '--json', '--quiet', '--config', config, '--out', join(dir, 'ref'), '--workers', '0']);
    expect(summaryOf(c2.proc).weightsSha256).toBe(lastJson(ref.stdout).weightsSha256);
    // The port closes with the worker.
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('a --health-listen port that is taken: one coded line, exit 2', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await runCli(['worker', '--connect', 'ws://127.0.0.1:1', '--health-listen', `127.0.0.1:${port}`]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim()).toBe(`dptrain: error [DPT_ERR_USAGE]: cannot listen on 127.0.0.1:${port} (EADDRINUSE); choose another --health-listen address or port`);
    } finally {
      busy.close();
    }
  });
});
