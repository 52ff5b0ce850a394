// deploy/compose.yaml rehearsed on loopback (rehearse.ts): its services'
// commands, env file, volumes and ports, read from the file and
// interpolated as compose does, run as real processes. The worker count is
// DPTRAIN_WORKERS (`deploy.replicas`), the config the mounted
// DPTRAIN_CONFIG, the token the env file's DPTRAIN_TOKEN; the image's
// HEALTHCHECK is the liveness check of both services.
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { lastJson, ROOT, runCli, tempDir, writeJson } from '../helpers/cli.js';
import { killAll } from '../helpers/procs.js';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import {
  composeContainer, freePort, imageHealthcheck, loadCompose, Machine, publishedPort, type Instance,
} from './rehearse.js';
import { REFERENCE_CONFIG, REHEARSAL_CONFIG, rehearseRun, type Container, type Probe } from './rehearsal-scenario.js';

const DEPLOY = join(ROOT, 'deploy');
const dir = tempDir('dptrain-compose-rehearsal-');
afterEach(killAll);
afterAll(killAll);

/** The image's HEALTHCHECK for the process of a container (the script reads its command line). */
function healthcheckOf(pid: number): Probe {
  const [node, ...args] = imageHealthcheck();
  return {
    what: `HEALTHCHECK of pid ${pid}`,
    check: () => new Promise((resolve, reject) => {
      const c = spawn(node, [...args, '--pid', String(pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => { out += d; });
      c.on('error', reject);
      c.on('close', (code) => resolve({ ok: code === 0, detail: out.trim() }));
    }),
  };
}

/** The port of `--listen HOST:PORT` or `--health-listen HOST:PORT` in a command. */
function listenPort(args: string[], flag: string): number {
  const i = args.indexOf(flag);
  if (i < 0) throw new Error(`${flag} is missing from ${args.join(' ')}`);
  return Number(args[i + 1].split(':').at(-1));
}

it('compose.yaml: a coordinator and 3 workers; the coordinator stopped and started again, a worker replaced: the --workers 0 weights', async () => {
  const ref = await runCli(['train', '--json', '--quiet', '--config', writeJson(dir, 'reference.json', REFERENCE_CONFIG), '--out', join(dir, 'ref'), '--workers', '0']);
  expect(ref.code, ref.stderr).toBe(0);

  // What the user gives compose: the env file with the token, the config to mount, the worker count, the host port.
  const envFile = join(dir, 'dptrain.env');
  writeFileSync(envFile, 'DPTRAIN_TOKEN=compose-rehearsal-token\nDPTRAIN_VIEWER_TOKEN=compose-rehearsal-viewer\n');
  const env = {
    DPTRAIN_ENV_FILE: envFile,
    DPTRAIN_CONFIG: writeJson(dir, 'train.json', REHEARSAL_CONFIG),
    DPTRAIN_WORKERS: '3',
    DPTRAIN_PORT: String(await freePort()),
  };
  const compose = loadCompose(join(DEPLOY, 'compose.yaml'), env);
  const coordinator = composeContainer(compose, 'coordinator', DEPLOY);
  const worker = composeContainer(compose, 'worker', DEPLOY);
  expect(coordinator.env.DPTRAIN_TOKEN).toBe('compose-rehearsal-token');
  expect(worker.env.DPTRAIN_TOKEN).toBe('compose-rehearsal-token');
  expect(coordinator.env.DPTRAIN_VIEWER_TOKEN).toBe('compose-rehearsal-viewer');

  // The coordinator listens on its container port, published on the host; workers reach it by its service name.
  const port = listenPort(coordinator.args, '--listen');
  const hostPort = publishedPort(compose.services.coordinator, port);
  expect(hostPort).toBe(Number(env.DPTRAIN_PORT));
  const coordinatorAt = `127.0.0.1:${hostPort}`;

  const machine = new Machine(dir);
  let coordinatorInstance: Instance | undefined;
  let workers = 0;
  const stdout = await rehearseRun({
    metricsUrl: `http://${coordinatorAt}/metrics`,
    viewerToken: 'compose-rehearsal-viewer',
    async startCoordinator(): Promise<Container> {
      // The same container each time (docker start): its file system and the named volume stay.
      coordinatorInstance ??= machine.create('coordinator', coordinator);
      const proc = machine.start(coordinatorInstance, coordinator, { [`0.0.0.0:${port}`]: coordinatorAt });
      await proc.waitFor(/listening on ws:\/\//);
      return { proc, alive: [healthcheckOf(proc.child.pid!)], ready: [] };
    },
    async startWorker(): Promise<Container> {
      const instance = machine.create(`worker_${++workers}`, worker);
      const health = listenPort(worker.args, '--health-listen');
      const peer = listenPort(worker.args, '--peer-listen');
      const proc = machine.start(instance, worker, {
        [`coordinator:${port}`]: coordinatorAt,
        [`0.0.0.0:${health}`]: `127.0.0.1:${await freePort()}`,
        // The collective's peer port: the container's own address is loopback here.
        [`0.0.0.0:${peer}`]: `127.0.0.1:${await freePort()}`,
      });
      await proc.waitFor(/health on http:/);
      return { proc, alive: [healthcheckOf(proc.child.pid!)], ready: [] };
    },
  }, Number(compose.services.worker.deploy.replicas), lastJson(ref.stdout).weightsSha256);
  // Four worker processes took part: the three replicas and the one that replaced the leaver.
  expect(stdout.match(/^worker p\d+ \(process /gm)).toHaveLength(4);
});
