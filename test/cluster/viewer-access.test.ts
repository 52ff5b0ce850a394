// Who may watch a run, against real coordinator processes listening on
// 0.0.0.0 (every address of the machine) over real sockets: /, /live and
// /metrics answer 401 without a credential and 200 with the run's token or
// the viewer token; the viewer token never makes a worker (refused at hello
// and at /data); the probes need nothing; a viewer token is made when none
// is given; --public-dashboard opens the three, and says so; the options
// that contradict each other are usage errors. The coordinators wait for a
// worker that never comes: the tests look at them while they wait.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, startCoordinator, startWorker, type Coordinator } from '../helpers/procs.js';
import { liveMessages, readLive } from '../helpers/viewers.js';

const TOKEN = 'viewer-test-run-token';
const VIEWER = 'viewer-test-viewer-token';
const dir = tempDir('dptrain-viewers-');
const CONFIG = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 1 }));
const VIEWER_FILE = join(dir, 'viewer-token.txt');
writeFileSync(VIEWER_FILE, `${VIEWER}\n`);
let runs = 0;

function out(): string {
  return join(dir, `run-${++runs}`);
}

/** A coordinator on 0.0.0.0:PORT, reached at 127.0.0.1:PORT. */
async function coordinatorOnAnyAddress(args: string[], env: Record<string, string> = {}): Promise<Coordinator & { base: string }> {
  const c = await startCoordinator(['--config', CONFIG, '--out', out(), ...args], env, 0, '0.0.0.0');
  await c.proc.waitFor(/waiting for 1 worker/);
  return { ...c, base: `http://127.0.0.1:${c.port}` };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

afterEach(killAll);
afterAll(killAll);

describe('the viewer credential (real coordinator on 0.0.0.0, real sockets)', () => {
  it('/, /live, /metrics: 401 without a credential; 200 with the run\'s token or the viewer token; /healthz and /readyz open', async () => {
    const c = await coordinatorOnAnyAddress(['--viewer-token-file', VIEWER_FILE], { DPTRAIN_TOKEN: TOKEN });
    // The link printed at start carries the viewer token in its fragment; never the run's token.
    await c.proc.waitFor(new RegExp(`dashboard: http://0\\.0\\.0\\.0:${c.port}/#view=${VIEWER} \\(read-only link; the viewer token; /metrics takes Authorization: Bearer <viewer token>\\)`));
    expect(c.proc.out()).not.toContain(TOKEN);

    for (const path of ['/', '/live', '/metrics']) {
      const attempts: Record<string, string>[] = [{}, bearer('wrong'), bearer(`${TOKEN}x`), { cookie: `dptrain_view_${c.port}=1.${'a'.repeat(43)}` }];
      for (const headers of attempts) {
        const res = await fetch(`${c.base}${path}`, { headers });
        expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="dptrain"');
        await res.text();
      }
    }
    for (const token of [TOKEN, VIEWER]) {
      expect((await fetch(`${c.base}/`, { headers: bearer(token) })).status).toBe(200);
      const metrics = await fetch(`${c.base}/metrics`, { headers: bearer(token) });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^dptrain_phase\{phase="waiting-for-workers"\} 1$/m);
      const live = await readLive(c.base, bearer(token));
      expect(live.status).toBe(200);
      expect(liveMessages(live.text)[0]).toMatchObject({ type: 'snapshot', progress: { phase: 'waiting-for-workers' } });
    }
    for (const path of ['/healthz', '/readyz', '/join', '/static/dashboard.js', '/static/sign-in.js']) {
      expect((await fetch(`${c.base}${path}`)).status, path).toBe(200);
    }
    // A browser at / without the credential gets the sign-in page (with the 401).
    const page = await fetch(`${c.base}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(401);
    expect(await page.text()).toMatch(/This dashboard opens with the viewer link the organizer shares/);
    // The sign-in trades the token for a cookie that opens /live.
    const session = await fetch(`${c.base}/viewer-session`, { method: 'POST', headers: bearer(VIEWER) });
    expect(session.status).toBe(204);
    const cookie = session.headers.get('set-cookie')!.split(';')[0];
    expect((await readLive(c.base, { cookie })).status).toBe(200);
  });

  it('the viewer token cannot join as a worker: refused at hello with the reason, and at /data', async () => {
    const c = await coordinatorOnAnyAddress(['--viewer-token-file', VIEWER_FILE], { DPTRAIN_TOKEN: TOKEN });
    const w = startWorker(`ws://127.0.0.1:${c.port}`, ['--cache', join(dir, 'cache')], { DPTRAIN_TOKEN: VIEWER }, 'viewer-as-worker');
    expect((await w.exited).code).toBe(1);
    expect(w.out()).toMatch(/dptrain: error \[DPT_ERR_REFUSED\]: the coordinator at \S+ refused this worker: that is the viewer token \(read-only: it opens the dashboard\); a worker needs the run's token \(--token-file or DPTRAIN_TOKEN; a tab, the \/join#token=\.\.\. link\)/);
    await c.proc.waitFor(/refused a worker on \S+ \(127\.0\.0\.1\): that is the viewer token/);
    const data = await fetch(`${c.base}/data/${'0'.repeat(64)}`, { headers: bearer(VIEWER) });
    expect(data.status).toBe(401);
    expect(await data.text()).toMatch(/that is the viewer token/);
    const metrics = await fetch(`${c.base}/metrics`, { headers: bearer(VIEWER) }).then((r) => r.text());
    expect(metrics).toMatch(/dptrain_connections_refused_total\{reason="bad-token"\} 1/);
    // The run's token still does (the dataset route answers 404 for another hash, past the token).
    expect((await fetch(`${c.base}/data/${'0'.repeat(64)}`, { headers: bearer(TOKEN) })).status).toBe(404);
  });

  it('no viewer token given: one is made for the run and printed in the link; $DPTRAIN_VIEWER_TOKEN gives one too', async () => {
    const made = await coordinatorOnAnyAddress([], { DPTRAIN_TOKEN: TOKEN });
    const m = await made.proc.waitFor(/dashboard: \S+\/#view=([0-9a-f]{32}) \(read-only link; a viewer token made for this run: choose one with --viewer-token-file;/);
    expect((await fetch(`${made.base}/metrics`)).status).toBe(401);
    expect((await fetch(`${made.base}/metrics`, { headers: bearer(m[1]) })).status).toBe(200);
    const fromEnv = await coordinatorOnAnyAddress([], { DPTRAIN_TOKEN: TOKEN, DPTRAIN_VIEWER_TOKEN: VIEWER });
    expect((await fetch(`${fromEnv.base}/metrics`, { headers: bearer(VIEWER) })).status).toBe(200);
    expect((await fetch(`${fromEnv.base}/metrics`, { headers: bearer(m[1]) })).status).toBe(401);
  });

  it('--public-dashboard: 200 without a credential, read-only, said at start; workers still need the token', async () => {
    const c = await coordinatorOnAnyAddress(['--public-dashboard'], { DPTRAIN_TOKEN: TOKEN });
    await c.proc.waitFor(/dashboard: \S+\/ \(public: anyone who reaches this port may watch the run, read-only; --public-dashboard\)/);
    for (const path of ['/', '/metrics']) expect((await fetch(`${c.base}${path}`)).status, path).toBe(200);
    expect((await readLive(c.base)).status).toBe(200);
    expect((await fetch(`${c.base}/data/${'0'.repeat(64)}`)).status).toBe(401);
  });

  it('loopback stays open without a viewer token', async () => {
    const c = await startCoordinator(['--config', CONFIG, '--out', out()], { DPTRAIN_TOKEN: TOKEN });
    await c.proc.waitFor(new RegExp(`dashboard: http://127\\.0\\.0\\.1:${c.port}/$`, 'm'));
    for (const path of ['/', '/metrics']) expect((await fetch(`http://127.0.0.1:${c.port}${path}`)).status, path).toBe(200);
  });

  it('usage errors: a viewer token with --public-dashboard, the same token twice, the options without --listen, two sources', async () => {
    for (const [args, env, message] of [
      [['--listen', '0.0.0.0:0', '--public-dashboard', '--viewer-token', VIEWER], {}, /--public-dashboard opens the dashboard to anyone; a viewer token .* asks for a credential: give one of them/],
      [['--listen', '0.0.0.0:0', '--public-dashboard'], { DPTRAIN_VIEWER_TOKEN: VIEWER }, /--public-dashboard opens the dashboard to anyone/],
      [['--listen', '0.0.0.0:0', '--token', TOKEN, '--viewer-token', TOKEN], {}, /the viewer token must differ from the run's token \(--token\)/],
      [['--listen', '0.0.0.0:0', '--viewer-token', VIEWER, '--viewer-token-file', VIEWER_FILE], {}, /give --viewer-token or --viewer-token-file, not both/],
      [['--listen', '0.0.0.0:0', '--viewer-token-file', join(dir, 'missing.txt')], {}, /--viewer-token-file \S+missing\.txt: cannot read it \(ENOENT\)/],
      [['--viewer-token', VIEWER], {}, /--viewer-token needs --listen HOST:PORT/],
      [['--public-dashboard'], {}, /--public-dashboard needs --listen HOST:PORT/],
    ] as const) {
      const r = await runCli(['train', '--config', CONFIG, '--out', out(), ...args], { env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const help = await runCli(['train', '--help']);
    expect(help.stdout).toMatch(/--viewer-token <token>/);
    expect(help.stdout).toMatch(/--viewer-token-file <file>/);
    expect(help.stdout).toMatch(/--public-dashboard/);
  });
});
