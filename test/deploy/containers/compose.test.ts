// deploy/compose.yaml under podman-compose (1.0.3 here), with real
// containers of the image built once for the suite: a coordinator and 3
// workers (DPTRAIN_WORKERS: podman-compose ignores --scale) train a config
// mounted from DPTRAIN_CONFIG, with the token and the viewer token from the
// env file and the run folder on the named volume. Mid-run, with the step
// held (rehearsal-scenario.ts's config): the HEALTHCHECK of the coordinator
// (--listen) and of a worker (--health-listen), the metrics on the published
// port (401 without the viewer token, the dashboard link in the log);
// `podman stop` of the coordinator (SIGTERM: a checkpoint, exit 143) and
// `podman start` of the same container (--auto-resume; the workers come
// back by themselves); a 4th worker added by `up -d` with DPTRAIN_WORKERS=4
// and the worker holding the step killed (`podman kill`). The run ends with
// the weightsSha256 of `--workers 0` on the host.
import { chmodSync, readdirSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { lastJson, ROOT, runCli, tempDir, writeJson } from '../../helpers/cli.js';
import { freePort } from '../rehearse.js';
import { REFERENCE_CONFIG, REHEARSAL_CONFIG, STALL_STEP, weightsShaIn } from '../rehearsal-scenario.js';
import { composeUnavailable, containersReady, inspect, logLines, podman, waitForLogLine } from './podman.js';

const TAG = inject('dptrainImage');
const ready = containersReady('the compose tests', composeUnavailable);
const PROJECT = `dptrain-compose-${process.pid}`;
const STALL = /chaos: stalling task/;
const READY = /ready \(\d+ threads?\)/;

interface ComposeEnv { [k: string]: string }

/** podman-compose -p PROJECT -f deploy/compose.yaml ARGS, with the settings in the environment. */
function compose(env: ComposeEnv, ...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    execFile('podman-compose', ['-p', PROJECT, '-f', join(ROOT, 'deploy/compose.yaml'), ...args],
      { env: { ...process.env, ...env }, maxBuffer: 16 << 20, timeout: 300_000 },
      (err, stdout, stderr) => resolve({ code: err === null ? 0 : (err as { code?: number }).code ?? null, out: stdout + stderr }));
  });
}

const name = (service: string, n: number) => `${PROJECT}_${service}_${n}`;
const COORDINATOR = name('coordinator', 1);

/** The first of the containers whose log shows `pattern` more often than `before[i]`. */
function nextToLog(names: string[], pattern: RegExp, before: number[]): Promise<string> {
  return Promise.race(names.map((n, i) =>
    waitForLogLine(n, pattern, 120_000, before[i] + 1).then(() => n, () => new Promise<string>(() => {}))));
}

let env: ComposeEnv = {};

afterAll(async () => {
  if (!ready) return;
  await compose({ ...env, DPTRAIN_WORKERS: '4' }, 'down', '-v');
  await podman(['network', 'rm', '-f', `${PROJECT}_default`]); // podman-compose 1.0.3 leaves it
});

describe.runIf(ready)('deploy/compose.yaml under podman-compose', () => {
  it('3 workers; the coordinator stopped and started, a worker killed and one added: the --workers 0 weights', async () => {
    const dir = tempDir('dptrain-compose-');
    chmodSync(dir, 0o755); // the containers' node user reads the mounted config
    const ref = await runCli(['train', '--json', '--quiet', '--config', writeJson(dir, 'reference.json', REFERENCE_CONFIG), '--out', join(dir, 'ref'), '--workers', '0']);
    expect(ref.code, ref.stderr).toBe(0);
    const envFile = join(dir, 'dptrain.env');
    writeFileSync(envFile, 'DPTRAIN_TOKEN=compose-container-token\nDPTRAIN_VIEWER_TOKEN=compose-container-viewer\n');
    const port = await freePort();
    env = {
      DPTRAIN_IMAGE: TAG, DPTRAIN_WORKERS: '3', DPTRAIN_PORT: String(port),
      DPTRAIN_CONFIG: writeJson(dir, 'train.json', REHEARSAL_CONFIG), DPTRAIN_ENV_FILE: envFile,
    };
    const up = await compose(env, 'up', '-d', '--no-build');
    expect(up.code, up.out).toBe(0);
    const workers = [1, 2, 3].map((n) => name('worker', n));

    // The step is held: every container healthy, the metrics on the published port.
    await nextToLog(workers, STALL, [0, 0, 0]);
    for (const w of workers) await waitForLogLine(w, READY);
    for (const c of [COORDINATOR, ...workers]) {
      const hc = await podman(['healthcheck', 'run', c]);
      expect(hc.code, `${c}: ${hc.stdout}${hc.stderr}`).toBe(0);
    }
    expect(await inspect(COORDINATOR, '{{.State.Health.Status}}')).toBe('healthy');
    // Off loopback (the published port): the metrics and the dashboard need the viewer token; the link carries it.
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(401);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(401);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: 'Bearer compose-container-viewer' } })).text();
    expect(metrics).toMatch(/^dptrain_phase\{phase="training"\} 1$/m);
    expect(await logLines(COORDINATOR, /^dashboard: /)).toEqual([expect.stringContaining('http://0.0.0.0:8080/#view=compose-container-viewer (read-only link; the viewer token;')]);

    // podman stop: SIGTERM to dptrain as PID 1, which checkpoints and exits 143 (not 137 after the grace period).
    const stop = await podman(['stop', COORDINATOR]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(await inspect(COORDINATOR, '{{.State.ExitCode}}')).toBe('143');
    expect(await logLines(COORDINATOR, /interrupted at step/)).toEqual([`dptrain: interrupted at step ${STALL_STEP - 1}; resume with: dptrain train --resume /runs/current`]);
    const runs = (await podman(['volume', 'inspect', `${PROJECT}_runs`, '--format', '{{.Mountpoint}}'])).stdout.trim();
    expect(readdirSync(join(runs, 'current')).sort()).toEqual(['checkpoint.msgpack', 'config.json']);
    for (const w of workers) await waitForLogLine(w, /reconnecting in/);

    // podman start of the same container: it resumes; the workers come back by themselves.
    const stalled = await Promise.all(workers.map(async (w) => (await logLines(w, STALL)).length));
    const readies = await Promise.all(workers.map(async (w) => (await logLines(w, READY)).length));
    expect((await podman(['start', COORDINATOR])).code).toBe(0);
    const holder = await nextToLog(workers, STALL, stalled);
    for (const [i, w] of workers.entries()) await waitForLogLine(w, READY, 120_000, readies[i] + 1);
    expect(await logLines(COORDINATOR, /resuming at step/)).toHaveLength(1);

    // One more worker (podman-compose 1.0.3: `up -d` with a larger count creates the missing ones)...
    const more = await compose({ ...env, DPTRAIN_WORKERS: '4' }, 'up', '-d', '--no-build');
    expect(more.code, more.out).toBe(0);
    await waitForLogLine(name('worker', 4), READY);
    // ...and the worker holding the step killed: its range is reassigned.
    expect((await podman(['kill', holder])).code).toBe(0);

    expect((await podman(['wait', COORDINATOR])).stdout.trim()).toBe('0');
    const out = (await podman(['logs', COORDINATOR])).stdout;
    expect(weightsShaIn(out)).toBe(lastJson(ref.stdout).weightsSha256);
    expect(out.match(/^worker p\d+ \(process /gm)).toHaveLength(4);
    expect(readdirSync(join(runs, 'current')).sort()).toEqual(['checkpoint.msgpack', 'config.json', 'metrics.jsonl', 'model.dptmodel']);
    // Told the run is finished, the workers exit 0 and stay down (restart: on-failure); the killed one stays down too.
    for (const w of [...workers, name('worker', 4)]) {
      await podman(['wait', w]);
      expect(await inspect(w, '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}')).toBe(w === holder ? 'exited 137 0' : 'exited 0 0');
    }
  });
});
