// Real containers for the test suites of test/deploy/containers: is podman
// ready here, build the image once, run containers. Nothing is installed
// from here: `bash deploy/podman-setup.sh` (as root; .ci/run does it) sets
// podman up. Without it the suites print why and skip, unless
// DPTRAIN_REQUIRE_CONTAINERS=1 (set by .ci/run) makes that a failure.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { ROOT } from '../../helpers/cli.js';

export const BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
export const REQUIRE_ENV = 'DPTRAIN_REQUIRE_CONTAINERS';

/** Why containers cannot run here, or undefined when podman and the base image are ready. */
export function containersUnavailable(): string | undefined {
  try {
    execFileSync('podman', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'podman is not installed (run `bash deploy/podman-setup.sh` as root)';
  }
  try {
    execFileSync('podman', ['image', 'exists', BASE_IMAGE], { stdio: 'ignore' });
  } catch {
    return `the base image ${BASE_IMAGE} is missing (run \`bash deploy/podman-setup.sh\` as root: it builds a local stand-in)`;
  }
  return undefined;
}

/**
 * True when the container suites should run. Prints the reason when they
 * are skipped; throws it when DPTRAIN_REQUIRE_CONTAINERS=1.
 */
export function containersReady(suite: string): boolean {
  const why = containersUnavailable();
  if (why === undefined) return true;
  if (process.env[REQUIRE_ENV] === '1') throw new Error(`${suite}: ${REQUIRE_ENV}=1 but ${why}`);
  console.log(`skipping ${suite}: ${why}`);
  return false;
}

export interface Result { code: number | null; stdout: string; stderr: string }

/** Run podman with these arguments; resolves with its exit code and output (never rejects on a non-zero exit). */
export function podman(args: string[], opts: { timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile('podman', args, { cwd: ROOT, maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 300_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
      if (err !== null && code === null) reject(err);
      else resolve({ code, stdout, stderr: withoutSystemdNoise(stderr) });
    });
    child.stdin?.end();
  });
}

/**
 * podman wants systemd timers for HEALTHCHECKs and logs an error on every
 * container start without systemd (this machine, CI); `podman healthcheck
 * run` works all the same. Drop those lines so failures show what matters.
 */
function withoutSystemdNoise(stderr: string): string {
  return stderr.split('\n').filter((l) => !l.includes('unable to get systemd connection')).join('\n');
}

/** Build deploy/Dockerfile from the repository root; returns the seconds it took. */
export async function buildImage(tag: string): Promise<number> {
  const t0 = performance.now();
  // --format docker: the OCI format has no HEALTHCHECK (podman drops it with a warning).
  const r = await podman(['build', '--format', 'docker', '--pull=never', '-f', 'deploy/Dockerfile', '-t', tag, '.'], { timeoutMs: 900_000 });
  if (r.code !== 0) throw new Error(`podman build failed (${r.code}):\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
  return (performance.now() - t0) / 1000;
}

/** Resolves when a line of `podman logs -f NAME` (stdout or stderr) matches. */
export function waitForLogLine(name: string, pattern: RegExp, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('podman', ['logs', '-f', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '', done = false;
    const finish = (err: Error | undefined, line?: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill();
      if (err !== undefined) reject(err); else resolve(line!);
    };
    const timer = setTimeout(() => finish(new Error(`no log line of ${name} matched ${pattern} within ${timeoutMs} ms:\n${buffered}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buffered += d;
      const line = buffered.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) finish(undefined, line);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => finish(new Error(`podman logs -f ${name} ended before a line matched ${pattern}:\n${buffered}`)));
  });
}
