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

/** Why podman-compose cannot run here (on top of containersUnavailable), or undefined. */
export function composeUnavailable(): string | undefined {
  try {
    execFileSync('podman-compose', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'podman-compose is not installed (run `bash deploy/podman-setup.sh` as root)';
  }
}

/**
 * True when the container suites should run. Prints the reason when they
 * are skipped; throws it when DPTRAIN_REQUIRE_CONTAINERS=1.
 */
export function containersReady(suite: string, extra: () => string | undefined = () => undefined): boolean {
  const why = containersUnavailable() ?? extra();
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

/**
 * Resolves with the line of `podman logs -f NAME` (stdout or stderr) where
 * `pattern` matches for the `times`-th time (counted over the container's
 * whole log, earlier runs of a restarted container included).
 */
export function waitForLogLine(name: string, pattern: RegExp, timeoutMs = 120_000, times = 1): Promise<string> {
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
    const timer = setTimeout(() => finish(new Error(`no log line of ${name} matched ${pattern} ${times} times within ${timeoutMs} ms:\n${buffered}`)), timeoutMs);
    const onData = (d: Buffer) => {
      buffered += d;
      const lines = buffered.split('\n').filter((l) => pattern.test(l));
      if (lines.length >= times) finish(undefined, lines[times - 1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => finish(new Error(`podman logs -f ${name} ended before a line matched ${pattern} ${times} times:\n${buffered}`)));
  });
}

/** The lines of a container's log (stdout and stderr) that match `pattern`. */
export async function logLines(name: string, pattern: RegExp): Promise<string[]> {
  const r = await podman(['logs', name]);
  return (r.stdout + '\n' + r.stderr).split('\n').filter((l) => pattern.test(l));
}

/** `podman inspect NAME --format FORMAT`, trimmed. */
export async function inspect(name: string, format: string): Promise<string> {
  const r = await podman(['inspect', name, '--format', format]);
  if (r.code !== 0) throw new Error(`podman inspect ${name}: ${r.stderr}`);
  return r.stdout.trim();
}
