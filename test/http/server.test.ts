// startHttpServer with real requests on loopback port 0.
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { getRoute, sendText, startHttpServer, type RunningHttpServer } from '../../node/http/server.js';
import { tempDir } from '../helpers/cli.js';

let running: RunningHttpServer[] = [];
afterEach(async () => {
  await Promise.all(running.map((s) => s.close()));
  running = [];
});

async function start(...args: Parameters<typeof startHttpServer>): Promise<RunningHttpServer> {
  const s = await startHttpServer(...args);
  running.push(s);
  return s;
}

const hello = getRoute('/hello', (_req, res) => sendText(res, 200, 'hi\n'));

describe('startHttpServer', () => {
  it('routes GET and HEAD; 405 with Allow for other methods; 404 for unknown paths; a query string is ignored', async () => {
    const s = await start({ host: '127.0.0.1', port: 0, handlers: [hello] });
    expect(s.port).toBeGreaterThan(0);
    expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
    const get = await fetch(`${s.url}/hello?x=1`);
    expect([get.status, await get.text()]).toEqual([200, 'hi\n']);
    const head = await fetch(`${s.url}/hello`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    const post = await fetch(`${s.url}/hello`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.text()).toContain('POST is not allowed on /hello');
    const missing = await fetch(`${s.url}/nope`);
    expect([missing.status, await missing.text()]).toEqual([404, 'no route for /nope\n']);
  });

  it('tries handlers in order; a handler that throws costs a 500, not the server', async () => {
    const boom = getRoute('/boom', () => { throw new Error('kaput'); });
    const first = getRoute('/hello', (_req, res) => sendText(res, 200, 'first\n'));
    const s = await start({ host: '127.0.0.1', port: 0, handlers: [boom, first, hello] });
    const r = await fetch(`${s.url}/boom`);
    expect([r.status, await r.text()]).toEqual([500, 'internal error: kaput\n']);
    expect(await (await fetch(`${s.url}/hello`)).text()).toBe('first\n');
  });

  it('close() ends idle keep-alive connections and requests still in progress instead of waiting for them', async () => {
    let arrived!: () => void;
    const hangArrived = new Promise<void>((resolve) => { arrived = resolve; });
    const hang = getRoute('/hang', () => arrived()); // never answers
    const s = await start({ host: '127.0.0.1', port: 0, handlers: [hang, hello] });
    s.server.keepAliveTimeout = 600_000; // waiting for either would outlast the test's timeout
    const agent = new Agent({ keepAlive: true });
    const idleClosed = new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${s.url}/hello`, { agent }, (res) => {
        res.resume();
        res.on('end', () => req.socket?.once('close', () => resolve()));
      });
      req.on('error', reject);
      req.end();
    });
    await new Promise<void>((resolve) => agent.once('free', () => resolve())); // answered, socket kept open
    const hangEnded = new Promise<string>((resolve) => {
      httpRequest(`${s.url}/hang`, (res) => resolve(`answered ${res.statusCode}`)).on('error', (e) => resolve(e.message)).end();
    });
    await hangArrived;
    await s.close();
    await idleClosed;
    expect(await hangEnded).toBe('socket hang up');
    await s.close(); // a second close is harmless
    agent.destroy();
  }, 10_000);

  it('an address in use is DPT_ERR_USAGE naming it', async () => {
    const s = await start({ host: '127.0.0.1', port: 0, handlers: [] });
    await expect(startHttpServer({ host: '127.0.0.1', port: s.port, handlers: [] }))
      .rejects.toMatchObject({ code: 'DPT_ERR_USAGE', message: `cannot listen on 127.0.0.1:${s.port} (EADDRINUSE); choose another --listen address or port` });
  });

  it('serves HTTPS with the given certificate and key', async (ctx) => {
    const dir = tempDir('dptrain-tls-');
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    } catch (err) {
      console.log(`skipped the HTTPS test: openssl could not make a test certificate (${(err as Error).message})`);
      ctx.skip();
    }
    const cert = readFileSync(join(dir, 'cert.pem'));
    const s = await start({ host: '127.0.0.1', port: 0, tls: { cert, key: readFileSync(join(dir, 'key.pem')) }, handlers: [hello] });
    expect(s.url).toBe(`https://127.0.0.1:${s.port}`);
    const body = await new Promise<string>((resolve, reject) => {
      httpsRequest(`${s.url}/hello`, { ca: cert }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve(`${res.statusCode} ${text}`));
      }).on('error', reject).end();
    });
    expect(body).toBe('200 hi\n');
  });
});
