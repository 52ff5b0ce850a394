// Who may watch a run (coordinator/serve/viewer-access.ts), on a real HTTP
// server on port 0 with stand-ins for the guarded routes: the policy from
// the listen address and the options, 401 with a Bearer challenge, the run's
// and the viewer token as bearer tokens, the sign-in that trades a token
// for a session cookie, the cookie's expiry (a moved clock), and the routes
// that stay open.
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_SECONDS, viewerGate, viewerPolicy, type ViewerPolicy } from '../../coordinator/serve/viewer-access.js';
import { getRoute, sendText, startHttpServer, type RunningHttpServer } from '../../node/http/server.js';

let running: RunningHttpServer | undefined;
afterEach(async () => { await running?.close(); running = undefined; });

const RUN = 'run-token';
const VIEWER = 'viewer-token';

async function serve(policy: ViewerPolicy, now: () => number = Date.now) {
  const logged: string[] = [];
  const ok = (path: string) => getRoute(path, (_req, res) => sendText(res, 200, `${path} ok\n`));
  running = await startHttpServer({
    host: '127.0.0.1', port: 0,
    handlers: [
      ok('/healthz'),
      viewerGate({ policy, token: RUN, tls: false, signInPage: { html: '<p>sign in</p>', headers: { 'x-frame-options': 'DENY' } }, log: (l) => logged.push(l), now }),
      ...['/', '/live', '/metrics', '/join', '/static/dashboard.js'].map(ok),
    ],
  });
  const url = running.url;
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${url}${path}`, { headers });
  return { url, get, logged };
}

const required: ViewerPolicy = { required: true, viewerToken: VIEWER, generated: false, public: false };

describe('viewerPolicy', () => {
  it('loopback stays open; any other address needs a credential, with a viewer token made when none is given', () => {
    for (const host of ['127.0.0.1', '127.8.9.1', '::1', 'localhost']) {
      expect(viewerPolicy({ listenHost: host, token: RUN, viewerToken: '', publicDashboard: false }), host).toMatchObject({ required: false, public: false });
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'coordinator.lan']) {
      const p = viewerPolicy({ listenHost: host, token: '', viewerToken: '', publicDashboard: false });
      expect(p, host).toMatchObject({ required: true, generated: true, public: false });
      expect(p.viewerToken, host).toMatch(/^[0-9a-f]{32}$/);
    }
    const made = ['a', 'b'].map(() => viewerPolicy({ listenHost: '0.0.0.0', token: RUN, viewerToken: '', publicDashboard: false }).viewerToken);
    expect(made[0]).not.toBe(made[1]);
  });

  it('a viewer token given is required even on loopback; --public-dashboard opens it anywhere', () => {
    expect(viewerPolicy({ listenHost: '127.0.0.1', token: RUN, viewerToken: VIEWER, publicDashboard: false })).toEqual(required);
    expect(viewerPolicy({ listenHost: '0.0.0.0', token: RUN, viewerToken: '', publicDashboard: true })).toEqual({ required: false, viewerToken: '', generated: false, public: true });
  });

  it('usage errors: a viewer token with --public-dashboard, a viewer token equal to the run\'s', () => {
    expect(() => viewerPolicy({ listenHost: '0.0.0.0', token: RUN, viewerToken: VIEWER, publicDashboard: true }))
      .toThrow(/--public-dashboard opens the dashboard to anyone; a viewer token \(--viewer-token, --viewer-token-file or \$DPTRAIN_VIEWER_TOKEN\) asks for a credential: give one of them/);
    expect(() => viewerPolicy({ listenHost: '0.0.0.0', token: RUN, viewerToken: RUN, publicDashboard: false }))
      .toThrow(/the viewer token must differ from the run's token/);
  });
});

describe('viewerGate', () => {
  it('without a credential: 401 with a Bearer challenge on /, /live and /metrics; a browser at / gets the sign-in page', async () => {
    const { get } = await serve(required);
    for (const path of ['/', '/live', '/metrics', '/metrics?x=1']) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(res.headers.get('www-authenticate'), path).toBe('Bearer realm="dptrain"');
      expect(await res.text(), path).toMatch(/needs a viewer credential: Authorization: Bearer <the viewer token or the run's token>/);
    }
    const page = await get('/', { accept: 'text/html,application/xhtml+xml' });
    expect(page.status).toBe(401);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(await page.text()).toBe('<p>sign in</p>');
    // Wrong tokens, other schemes, an empty bearer.
    for (const auth of [`Bearer ${RUN}x`, 'Bearer', `Basic ${Buffer.from(`u:${RUN}`).toString('base64')}`, `Bearer ${VIEWER.slice(1)}`]) {
      expect((await get('/metrics', { authorization: auth })).status, auth).toBe(401);
    }
  });

  it("the run's token and the viewer token open them; probes, /join and /static/ need nothing", async () => {
    const { get } = await serve(required);
    for (const token of [RUN, VIEWER]) {
      for (const path of ['/', '/live', '/metrics']) {
        const res = await get(path, { authorization: `Bearer ${token}` });
        expect(res.status, `${path} ${token}`).toBe(200);
        expect(await res.text()).toBe(`${path} ok\n`);
      }
    }
    expect((await get('/metrics', { authorization: `bearer  ${VIEWER}` })).status).toBe(200);
    for (const path of ['/healthz', '/join', '/static/dashboard.js']) expect((await get(path)).status, path).toBe(200);
  });

  it('POST /viewer-session trades a token for an HttpOnly, SameSite=Strict cookie that opens / and /live, until it expires', async () => {
    let now = 1_800_000_000_000;
    const { url, get, logged } = await serve(required, () => now);
    const signIn = (headers: Record<string, string>) => fetch(`${url}/viewer-session`, { method: 'POST', headers });
    const refused = await signIn({ authorization: 'Bearer nope' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('set-cookie')).toBeNull();
    expect(logged).toEqual(['refused a dashboard sign-in from 127.0.0.1: wrong token']);
    expect((await signIn({})).status).toBe(401);
    expect((await fetch(`${url}/viewer-session`)).status).toBe(405);
    // A page of another site may not sign its visitors in.
    expect((await signIn({ authorization: `Bearer ${VIEWER}`, origin: 'http://evil.example' })).status).toBe(403);

    const res = await signIn({ authorization: `Bearer ${VIEWER}`, origin: url });
    expect(res.status).toBe(204);
    const setCookie = res.headers.get('set-cookie')!;
    const port = new URL(url).port;
    expect(setCookie).toMatch(new RegExp(`^dptrain_view_${port}=\\d+\\.[A-Za-z0-9_-]{43}; Path=/; Max-Age=${SESSION_SECONDS}; HttpOnly; SameSite=Strict$`));
    const cookie = setCookie.split(';')[0];
    expect(cookie).not.toContain(VIEWER);
    for (const path of ['/', '/live', '/metrics']) expect((await get(path, { cookie: `other=1; ${cookie}` })).status, path).toBe(200);
    // Tampered with, or of another port: refused.
    const [name, value] = cookie.split('=');
    const [expiry, mac] = value.split('.');
    expect((await get('/live', { cookie: `${name}=${Number(expiry) + 3600}.${mac}` })).status).toBe(401);
    expect((await get('/live', { cookie: `dptrain_view_1=${value}` })).status).toBe(401);
    // It runs out.
    now += (SESSION_SECONDS - 1) * 1000;
    expect((await get('/live', { cookie })).status).toBe(200);
    now += 2000;
    expect((await get('/live', { cookie })).status).toBe(401);
  });

  it('open (loopback) and public: nothing needs a credential; a sign-in is answered without a cookie', async () => {
    for (const policy of [
      { required: false, viewerToken: '', generated: false, public: false },
      { required: false, viewerToken: '', generated: false, public: true },
    ]) {
      const { url, get } = await serve(policy);
      for (const path of ['/', '/live', '/metrics']) expect((await get(path)).status, path).toBe(200);
      const res = await fetch(`${url}/viewer-session`, { method: 'POST', headers: { authorization: 'Bearer anything' } });
      expect(res.status).toBe(204);
      expect(res.headers.get('set-cookie')).toBeNull();
      await running?.close();
      running = undefined;
    }
  });
});
