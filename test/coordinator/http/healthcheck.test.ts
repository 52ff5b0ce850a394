// The image's HEALTHCHECK script, run for real (dist/) against real processes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { healthHandlers } from '../../../coordinator/http/health.js';
import { healthzUrl } from '../../../coordinator/http/healthcheck.js';
import { startHttpServer } from '../../../coordinator/http/server.js';
import { ROOT } from '../../helpers/cli.js';

const SCRIPT = join(ROOT, 'dist/coordinator/http/healthcheck.js');
const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) c.kill('SIGKILL'); });

/** A long-lived process whose command line looks like the container's dptrain process. */
async function fakeDptrain(...args: string[]): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', '/app/bin/dptrain.js', ...args], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child.pid!;
}

function healthcheck(pid: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [SCRIPT, '--pid', String(pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out }));
  });
}

describe('healthzUrl', () => {
  it('probes the --listen port, wildcard hosts on loopback, https with --tls-cert; nothing without --listen', () => {
    expect(healthzUrl(['node', 'dptrain.js', 'train', '--listen', '0.0.0.0:8080'])).toBe('http://127.0.0.1:8080/healthz');
    expect(healthzUrl(['train', '--listen=10.1.2.3:9000', '--tls-cert', 'c.pem'])).toBe('https://10.1.2.3:9000/healthz');
    expect(healthzUrl(['train', '--listen', '[::]:8080'])).toBe('http://[::1]:8080/healthz');
    expect(healthzUrl(['train', '--listen', ':8080'])).toBe('http://127.0.0.1:8080/healthz');
    expect(healthzUrl(['worker', '--connect', 'ws://coordinator:8080'])).toBeUndefined();
    expect(() => healthzUrl(['train', '--listen', '8080'])).toThrow('--listen 8080: expected HOST:PORT');
  });
});

describe('healthcheck script (real processes)', () => {
  it('healthy while /healthz answers on the --listen port, unhealthy once it does not', async () => {
    const s = await startHttpServer({ host: '127.0.0.1', port: 0, handlers: healthHandlers(() => 'training') });
    const pid = await fakeDptrain('train', '--listen', `0.0.0.0:${s.port}`);
    expect(await healthcheck(pid)).toEqual({ code: 0, out: 'healthy\n' });
    await s.close();
    const down = await healthcheck(pid);
    expect(down.code).toBe(1);
    expect(down.out).toMatch(new RegExp(`^unhealthy: http://127\\.0\\.0\\.1:${s.port}/healthz: .*ECONNREFUSED`));
  });

  it('without --listen, healthy while the process exists', async () => {
    const pid = await fakeDptrain('worker', '--connect', 'ws://127.0.0.1:1');
    expect(await healthcheck(pid)).toEqual({ code: 0, out: 'healthy\n' });
    const gone = children.at(-1)!;
    await new Promise((resolve) => { gone.once('exit', resolve); gone.kill('SIGKILL'); });
    expect(await healthcheck(pid)).toEqual({ code: 1, out: `unhealthy: no process ${pid}\n` });
  });
});
