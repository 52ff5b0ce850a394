// What stands between a coordinator's port and the web, against a real
// coordinator process over real sockets: the pages' security headers, the
// Origin check on WebSocket upgrades, the limit of connections per address,
// the dashboard's live feed, and --verify-fraction with `dptrain worker`
// processes: a worker that corrupts its sums is caught, quarantined, and
// its address refused for the rest of the run.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, startCoordinator, startWorker, summaryOf, type Coordinator, type Proc } from '../helpers/procs.js';

const TOKEN = 'guards-test-token';
const ENV = { DPTRAIN_TOKEN: TOKEN };
const dir = tempDir('dptrain-guards-');
const CONFIG = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 3 }));
let reference = '';
let runs = 0;

function out(): string {
  return join(dir, `run-${++runs}`);
}

function worker(c: Coordinator, name = 'worker'): Proc {
  return startWorker(c.url, ['--cache', join(dir, 'cache')], ENV, name);
}

/** Opens a WebSocket to /ws; resolves with the HTTP status of a refused upgrade, or 101 once open (then closes it). */
function upgrade(c: Coordinator, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(c.url, origin === undefined ? {} : { origin });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

/** Opens a WebSocket and keeps it open (it says nothing, so the coordinator drops it after the handshake timeout). */
function hold(c: Coordinator): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(c.url);
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

beforeAll(async () => {
  const r = await runCli(['train', '--json', '--quiet', '--config', CONFIG, '--out', join(dir, 'ref'), '--workers', '0']);
  expect(r.code, r.stderr).toBe(0);
  reference = lastJson(r.stdout).weightsSha256 as string;
});
afterEach(killAll);
afterAll(killAll);

describe('the coordinator facing browsers (real process, real sockets)', () => {
  it('serves / and /join with a Content-Security-Policy that allows only its own origin; the static files too', async () => {
    const c = await startCoordinator(['--config', CONFIG, '--out', out()], ENV);
    const base = `http://127.0.0.1:${c.port}`;
    for (const path of ['/', '/join', '/static/dashboard.js', '/static/tab-worker.js', '/static/compute-worker.js', '/static/kernels.wasm']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toMatch(/default-src 'none'/);
      expect(csp, path).toMatch(/script-src 'self' 'wasm-unsafe-eval'(;|$)/);
      expect(csp, path).toMatch(/connect-src 'self'(;|$)/);
      expect(csp, path).toMatch(/worker-src 'self'(;|$)/);
      expect(csp, path).toMatch(/frame-ancestors 'none'/);
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
    }
    expect((await fetch(`${base}/join`).then((r) => r.text()))).toMatch(/data-kernels="wasm"/);
    expect((await fetch(`${base}/static/nothing.js`)).status).toBe(404);
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405);
  });

  it('WebSocket upgrades: no Origin (a program) and its own origin pass; another origin is refused (403) unless --allow-origin names it', async () => {
    const c = await startCoordinator(['--config', CONFIG, '--out', out(), '--allow-origin', 'https://class.example.org/any/path'], ENV);
    expect(await upgrade(c)).toBe(101);
    expect(await upgrade(c, `http://127.0.0.1:${c.port}`)).toBe(101);
    expect(await upgrade(c, 'https://class.example.org')).toBe(101);
    expect(await upgrade(c, 'http://evil.example')).toBe(403);
    expect(await upgrade(c, `http://127.0.0.1:${c.port + 1}`)).toBe(403);
    await c.proc.waitFor(/refused a WebSocket from 127\.0\.0\.1: origin http:\/\/evil\.example is not allowed \(the coordinator's own pages are; add others with --allow-origin\)/);
    const metrics = await fetch(`http://127.0.0.1:${c.port}/metrics`).then((r) => r.text());
    expect(metrics).toMatch(/dptrain_connections_refused_total\{reason="bad-origin"\} 2/);
  });

  it('--max-connections-per-address: one connection too many from an address is refused (429), WebSocket or dashboard feed', async () => {
    const c = await startCoordinator(['--config', CONFIG, '--out', out(), '--max-connections-per-address', '2', '--peer-timeout-ms', '3000'], ENV);
    await Promise.all([hold(c), hold(c)]);
    expect(await upgrade(c)).toBe(429);
    expect((await fetch(`http://127.0.0.1:${c.port}/live`)).status).toBe(429);
    await c.proc.waitFor(/refused a WebSocket from 127\.0\.0\.1: 2 connections from that address are open \(--max-connections-per-address\)/);
    // The two silent connections are dropped after the handshake timeout, which frees their places.
    await c.proc.waitFor(/(dropping connection from 127\.0\.0\.1: said nothing within 3000 ms of connecting[\s\S]*){2}/);
    expect(await upgrade(c)).toBe(101);
  });

  it('/live: a snapshot of the run, then updates, as server-sent events', async () => {
    const c = await startCoordinator(['--config', CONFIG, '--out', out(), '--min-workers', '1'], ENV);
    const res = await fetch(`http://127.0.0.1:${c.port}/live`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    const until = async (re: RegExp) => {
      while (!re.test(text)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the feed ended before ${re}:\n${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await until(/event: snapshot\ndata: (.*)\n\n/);
    const snapshot = JSON.parse(/event: snapshot\ndata: (.*)\n\n/.exec(text)![1]);
    expect(snapshot.info).toMatchObject({ name: 'mlp.json', batchSize: 64, microShards: 4, epochs: 3, tokenRequired: true });
    expect(JSON.stringify(snapshot)).not.toContain(TOKEN);
    expect(snapshot.progress.phase).toBe('waiting-for-workers');
    worker(c);
    // Updates carry what is new: here the steps' losses, the evaluations, the worker (in as many updates as the run takes).
    await until(/event: update\ndata: .*"evals":\[\{"epoch":1,"step":8,/);
    await until(/event: update\ndata: .*"phase":"done".*"workers":\[\{"id":"p1","kind":"process"/);
    expect(text).toMatch(/"losses":\[\[1,/);
    await reader.cancel();
    expect(await c.proc.exited).toMatchObject({ code: 0 });
  });

  it('--verify-fraction 1 with worker processes: a worker that corrupts its sums is quarantined; the run ends with the honest weights', async () => {
    const c = await startCoordinator(['--json', '--config', CONFIG, '--out', out(), '--min-workers', '2', '--verify-fraction', '1',
      '--chaos', 'corrupt:worker=0,step=2,index=3'], ENV);
    const ws = [worker(c, 'a'), worker(c, 'b')];
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(reference);
    expect(c.proc.out()).toMatch(/step 2: worker p\d \(process on \S+\) and worker p\d \(process on \S+\) disagree on micro-shards \d+(-\d+)? \(first at element 3 of block 0\); the coordinator recomputes them/);
    expect(c.proc.out()).toMatch(/step 2: quarantining worker p\d .*: its sums for micro-shards \d+(-\d+)? of step 2 differ from the coordinator's recomputation \(element 3 of block 0\)/);
    const codes = (await Promise.all(ws.map((w) => w.exited))).map((e) => e.code).sort();
    expect(codes).toEqual([0, 1]);
    const liar = ws.find((w) => /\[DPT_ERR_REFUSED\]: .* refused this worker: quarantined: /.test(w.out()))!;
    expect(liar.out()).not.toMatch(/reconnecting in/);
    expect(s.workerStats.map((w: { state: string }) => w.state).sort()).toEqual(['gone', 'quarantined']);
  });

  it('a quarantined address is refused for the rest of the run, new workers and dataset downloads alike', async () => {
    // The corrupt answer at step 2 gets its worker quarantined; the honest one then holds step 6 still (no step timeout).
    const c = await startCoordinator(['--config', CONFIG, '--out', out(), '--min-workers', '2', '--verify-fraction', '1', '--step-timeout-ms', '0',
      '--chaos', 'corrupt:worker=0,step=2;stall:worker=0,step=6,ms=600000'], ENV);
    const ws = [worker(c, 'a'), worker(c, 'b')];
    const liar = await Promise.race(ws.map((w) => w.waitFor(/refused this worker: quarantined: /).then(() => w)));
    expect((await liar.exited).code).toBe(1);
    const honest = ws.find((w) => w !== liar)!;
    await honest.waitFor(/chaos: stalling task/);
    const newcomer = worker(c, 'newcomer');
    expect((await newcomer.exited).code).toBe(1);
    expect(newcomer.out()).toMatch(/^dptrain: error \[DPT_ERR_REFUSED\]: .* refused this worker: address 127\.0\.0\.1 was quarantined earlier in this run \(a worker there answered wrongly\)$/m);
    const data = await fetch(`http://127.0.0.1:${c.port}/data/${'0'.repeat(64)}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(data.status).toBe(403);
    expect(c.proc.out()).toMatch(/quarantined address 127\.0\.0\.1 for the rest of the run/);
    expect(c.proc.out()).toMatch(/no other worker is connected to check worker p\d .*; the coordinator checks its ranges itself until another worker joins/);
  });

  it('usage errors: a fraction outside [0, 1], an origin that is not http(s), the options without --listen', async () => {
    for (const [args, message] of [
      [['--listen', '127.0.0.1:0', '--verify-fraction', '1.5'], /--verify-fraction must be a number from 0 to 1, got "1\.5"/],
      [['--listen', '127.0.0.1:0', '--allow-origin', 'ftp://x.org'], /--allow-origin: the scheme must be http: or https:, got "ftp:"/],
      [['--listen', '127.0.0.1:0', '--max-connections-per-address', '0'], /--max-connections-per-address must be a whole number >= 1/],
      [['--verify-fraction', '0.5'], /--verify-fraction needs --listen HOST:PORT/],
      [['--allow-origin', 'http://x.org'], /--allow-origin needs --listen HOST:PORT/],
    ] as const) {
      const r = await runCli(['train', '--config', CONFIG, '--out', out(), ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
  });
});
