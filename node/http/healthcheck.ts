// The container image's HEALTHCHECK (deploy/Dockerfile): node, not curl,
// since slim images have no curl. It reads the command line of the
// container's dptrain process, so the port is said once, in `--listen`:
//
//   - with --listen HOST:PORT (a coordinator): healthy when GET /healthz on
//     that port answers 200 within 3 s (https with --tls-cert; a wildcard
//     host is probed on loopback);
//   - with --health-listen HOST:PORT (a worker): the same, on that port
//     (worker/health-server.ts);
//   - without either (a worker without a health port, or a coordinator with
//     local threads only): healthy while the dptrain process exists. It has
//     no port to ask, and a process that died ends its container anyway, so
//     there is nothing more to check.
//
// Usage: node healthcheck.js [--pid N]  (default: PID 1, or the first
// dptrain process when an init such as `podman run --init` is PID 1).
// Exits 0 when healthy, 1 with the reason on stdout (podman/docker inspect
// show it) otherwise.

import { readdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pathToFileURL } from 'node:url';

const TIMEOUT_MS = 3000;

/** The value of `--name V` or `--name=V` in argv, if any. */
function flagValue(argv: readonly string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) return argv[i + 1];
    if (argv[i].startsWith(name + '=')) return argv[i].slice(name.length + 1);
  }
  return undefined;
}

/** The /healthz URL to probe for a dptrain command line, or undefined when it does not listen. */
export function healthzUrl(argv: readonly string[]): string | undefined {
  const option = flagValue(argv, '--listen') !== undefined ? '--listen' : '--health-listen';
  const listen = flagValue(argv, option);
  if (listen === undefined) return undefined;
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(listen);
  if (m === null) throw new Error(`${option} ${listen}: expected HOST:PORT`);
  // Port 0 is picked when the process starts; its command line cannot say which.
  if (Number(m[3]) === 0) throw new Error(`${option} ${listen}: port 0 is picked at start, so it cannot be probed; give a fixed port`);
  let host = m[1] ?? m[2];
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  const scheme = flagValue(argv, '--tls-cert') !== undefined ? 'https' : 'http';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${m[3]}/healthz`;
}

function cmdline(pid: string): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined; // gone, or not ours to read
  }
}

const isDptrain = (argv: readonly string[]) => argv.some((a) => a.endsWith('dptrain.js') || a.endsWith('/dptrain'));

/** The command line of the dptrain process: `pid`'s, else PID 1's, else the first one found. */
export function dptrainCommandLine(pid?: string): string[] | undefined {
  if (pid !== undefined) return cmdline(pid);
  const first = cmdline('1');
  if (first !== undefined && isDptrain(first)) return first;
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const argv = cmdline(p);
    if (argv !== undefined && isDptrain(argv) && p !== String(process.pid)) return argv;
  }
  return undefined;
}

/** GET url; resolves with the status code, rejects on error or timeout. */
function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith('https:') ? httpsRequest : httpRequest;
    // The certificate may name a public host, not loopback: this checks liveness, not identity.
    const req = get(url, { method: 'GET', timeout: TIMEOUT_MS, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The health verdict: undefined when healthy, else the reason. */
export async function checkHealth(pid?: string): Promise<string | undefined> {
  const argv = dptrainCommandLine(pid);
  if (argv === undefined) return pid !== undefined ? `no process ${pid}` : 'no dptrain process in this container';
  let url: string | undefined;
  try {
    url = healthzUrl(argv);
  } catch (err) {
    return (err as Error).message;
  }
  if (url === undefined) return undefined;
  try {
    const status = await probe(url);
    return status === 200 ? undefined : `${url} answered ${status}`;
  } catch (err) {
    return `${url}: ${(err as Error).message}`;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const reason = await checkHealth(flagValue(process.argv.slice(2), '--pid'));
  process.stdout.write(reason === undefined ? 'healthy\n' : `unhealthy: ${reason}\n`);
  process.exitCode = reason === undefined ? 0 : 1;
}
