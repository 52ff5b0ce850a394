// The image's HEALTHCHECK script, run for real (dist/) against real processes.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { healthHandlers } from '../../coordinator/serve/health.js';
import { healthzUrl } from '../../node/http/healthcheck.js';
import { startHttpServer } from '../../node/http/server.js';
import { healthcheck } from '../helpers/healthcheck.js';

const children: ChildProcess[] = [];
afterAll(() => { for (const c of children) c.kill('SIGKILL'); });

/** A long-lived process whose command line looks like the container's dptrain process. */
async function fakeDptrain(...args: string[]): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)', '/app/bin/dptrain.js', ...args], { stdio: 'ignore' });
  children.push(child);
  await new Promise((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return child.pid!;
}

describe('healthzUrl', () => {
  it('probes the --listen port, wildcard hosts on loopback, https with --tls-cert; nothing without --listen', () => {
    expect(healthzUrl(['node', 'dptrain.js', 'train', '--listen', '0.0.0.0:8080'])).toBe('http://127.0.0.1:8080/healthz');
    expect(healthzUrl(['train', '--listen=10.1.2.3:9000', '--tls-cert', 'c.pem'])).toBe('https://10.1.2.3:9000/healthz');
    expect(healthzUrl(['train', '--listen', '[::]:8080'])).toBe('http://[::1]:8080/healthz');
    expect(healthzUrl(['train', '--listen', ':8080'])).toBe('http://127.0.0.1:8080/healthz');
    expect(healthzUrl(['worker', '--connect', 'ws://coordinator:8080'])).toBeUndefined();
    expect(() => healthzUrl(['train', '--listen', '8080'])).toThrow('--listen 8080: expected HOST:PORT');
    expect(() => healthzUrl(['train', '--listen', '127.0.0.1:0'])).toThrow('--listen 127.0.0.1:0: port 0 is picked at start, so it cannot be probed; give a fixed port');
  });

  it('a worker is probed on its --health-listen port', () => {
    expect(healthzUrl(['worker', '--connect', 'ws://c:7070', '--health-listen', '0.0.0.0:7071'])).toBe('http://127.0.0.1:7071/healthz');
    expect(healthzUrl(['worker', '--connect', 'ws://c:7070', '--health-listen=127.0.0.1:9'])).toBe('http://127.0.0.1:9/healthz');
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

  it('a command line it cannot probe is unhealthy with the reason, not a stack trace', async () => {
    const pid = await fakeDptrain('worker', '--connect', 'ws://127.0.0.1:1', '--health-listen', '127.0.0.1:0');
    expect(await healthcheck(pid)).toEqual({ code: 1, out: 'unhealthy: --health-listen 127.0.0.1:0: port 0 is picked at start, so it cannot be probed; give a fixed port\n' });
  });

  it('without --listen, healthy while the process exists', async () => {
    const pid = await fakeDptrain('worker', '--connect', 'ws://127.0.0.1:1');
    expect(await healthcheck(pid)).toEqual({ code: 0, out: 'healthy\n' });
    const gone = children.at(-1)!;
    await new Promise((resolve) => { gone.once('exit', resolve); gone.kill('SIGKILL'); });
    expect(await healthcheck(pid)).toEqual({ code: 1, out: `unhealthy: no process ${pid}\n` });
  });
});
