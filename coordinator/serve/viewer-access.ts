// Who may watch a run: the dashboard (/), its feed (/live) and /metrics.
//
//   - A coordinator that listens on loopback only serves them to anyone
//     (anyone is this machine), unless a viewer token is given (a reverse
//     proxy on the same host may publish the port).
//   - On any other address they answer 401 (`WWW-Authenticate: Bearer`)
//     without a credential: the run's token, or the viewer token
//     (--viewer-token[-file], $DPTRAIN_VIEWER_TOKEN; one is made for the run
//     when none is given), which is read-only: it never lets a worker in
//     (node/net/secret.ts refuses it at hello and at /data).
//   - --public-dashboard opts out: anyone who reaches the port may watch.
//   - /healthz and /readyz (probes), /join and /static/ (the pages' code,
//     no run data) stay open; /ws and /data take the run's token.
//
// Programs (Prometheus, curl) send `Authorization: Bearer <token>` with
// every request. A browser cannot: a link opens `/` with a plain GET, and
// EventSource sets no headers. So the dashboard link carries the token in
// its fragment (`/#view=...`, never sent by the browser), the page keeps
// it in sessionStorage and trades it, by a POST with the bearer header to
// /viewer-session, for a session cookie (HttpOnly, SameSite=Strict,
// 15 minutes, renewed by the open page), which GET / and the EventSource
// of /live then carry. Chosen over the alternatives because the token
// itself never appears in a URL, so never in an address bar, a history, a
// Referer or a proxy's access log (a ?token= query would), while /live
// stays a plain EventSource with its reconnects (a fetch()-streamed feed
// would re-implement them). The cookie is an HMAC of its expiry under a key
// made at start: nothing to store, and a restarted coordinator's old
// cookies are void (the page signs in again from sessionStorage).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dptError } from '../../src/errors.js';
import { bearerToken, pathOf, sendText, type Handler } from '../../node/http/server.js';
import { isLoopbackHost } from '../../node/net/address.js';
import { originProblem } from '../../node/net/origin.js';
import { tokenMatches, VIEWER_TOKEN_ENV } from '../../node/net/secret.js';

/** The routes that show the run. */
export const VIEWER_PATHS: readonly string[] = ['/', '/live', '/metrics'];
/** Where a page trades its token for a session cookie (POST, Authorization: Bearer). */
export const SESSION_PATH = '/viewer-session';
/** A session cookie's life; the dashboard renews it well before. */
export const SESSION_SECONDS = 15 * 60;

export interface ViewerPolicy {
  /** Whether /, /live and /metrics need a credential. */
  required: boolean;
  /** The viewer token in force ('' for none): given, or made for this run. */
  viewerToken: string;
  /** The viewer token was made for this run (none was given). */
  generated: boolean;
  /** --public-dashboard: open to anyone, said at start. */
  public: boolean;
}

/** Who may watch, from the listen address and the options; usage errors for options that contradict each other. */
export function viewerPolicy(o: { listenHost: string; token: string; viewerToken: string; publicDashboard: boolean }): ViewerPolicy {
  const usage = (message: string) => dptError('DPT_ERR_USAGE', message);
  if (o.publicDashboard) {
    if (o.viewerToken !== '') {
      throw usage(`--public-dashboard opens the dashboard to anyone; a viewer token (--viewer-token, --viewer-token-file or $${VIEWER_TOKEN_ENV}) asks for a credential: give one of them`);
    }
    return { required: false, viewerToken: '', generated: false, public: true };
  }
  if (o.viewerToken !== '') {
    if (o.token !== '' && tokenMatches(o.viewerToken, o.token)) {
      throw usage('the viewer token must differ from the run\'s token (--token): the viewer token is read-only, the run\'s lets a worker join');
    }
    return { required: true, viewerToken: o.viewerToken, generated: false, public: false };
  }
  if (isLoopbackHost(o.listenHost)) return { required: false, viewerToken: '', generated: false, public: false };
  return { required: true, viewerToken: randomBytes(16).toString('hex'), generated: true, public: false };
}

/** The dashboard link printed at start, and what it says about who may watch. */
export function dashboardLine(baseUrl: string, p: ViewerPolicy): string {
  if (p.public) return `dashboard: ${baseUrl}/ (public: anyone who reaches this port may watch the run, read-only; --public-dashboard)`;
  if (!p.required) return `dashboard: ${baseUrl}/`;
  return `dashboard: ${baseUrl}/#view=${p.viewerToken} (read-only link; ` +
    (p.generated ? 'a viewer token made for this run: choose one with --viewer-token-file' : 'the viewer token') +
    '; /metrics takes Authorization: Bearer <viewer token>)';
}

export interface ViewerGateOptions {
  policy: ViewerPolicy;
  /** The run's token ('' for none): it opens the dashboard too. */
  token: string;
  /** Whether the server speaks TLS (the cookie is then Secure; the Origin check compares the scheme). */
  tls: boolean;
  /** The page a browser gets with the 401 at `/` (it signs in from the link's fragment); null: a plain-text 401. */
  signInPage: { html: string; headers: Record<string, string> } | null;
  log(line: string): void;
  /** Wall-clock milliseconds (tests move it). */
  now?: () => number;
}

/** The cookie's name: the port in it, so two coordinators on one host (cookies ignore ports) keep theirs apart. */
function cookieName(req: IncomingMessage): string {
  return `dptrain_view_${req.socket.localPort ?? 0}`;
}

function cookieValue(req: IncomingMessage, name: string): string {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return '';
}

/**
 * The one handler that guards the viewers' routes: put it before them. It
 * answers POST /viewer-session and, without a credential, 401 on /, /live
 * and /metrics; everything else goes on to the next handler.
 */
export function viewerGate(o: ViewerGateOptions): Handler {
  const now = o.now ?? Date.now;
  const key = randomBytes(32);
  const mac = (expiry: string) => createHmac('sha256', key).update(`view:${expiry}`).digest('base64url');
  const viewerToken = o.policy.viewerToken;

  const tokenOpens = (given: string): boolean => {
    if (given === '') return false;
    // Both compared, whichever matches: the time taken says nothing about which.
    const run = o.token !== '' && tokenMatches(given, o.token);
    const viewer = viewerToken !== '' && tokenMatches(given, viewerToken);
    return run || viewer;
  };
  const sessionOpens = (value: string): boolean => {
    const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (m === null || Number(m[1]) * 1000 <= now()) return false;
    return timingSafeEqual(Buffer.from(m[2]), Buffer.from(mac(m[1])));
  };
  const authorized = (req: IncomingMessage): boolean => tokenOpens(bearerToken(req)) || sessionOpens(cookieValue(req, cookieName(req)));

  const unauthorized = (req: IncomingMessage, res: ServerResponse, path: string) => {
    const challenge = { 'www-authenticate': 'Bearer realm="dptrain"' };
    if (path === '/' && o.signInPage !== null && /text\/html/.test(req.headers.accept ?? '')) {
      res.writeHead(401, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', ...o.signInPage.headers, ...challenge });
      res.end(o.signInPage.html);
      return;
    }
    sendText(res, 401, `${path} needs a viewer credential: Authorization: Bearer <the viewer token or the run's token>, ` +
      'or the dashboard link the coordinator printed at start (/#view=...)\n', challenge);
  };

  const signIn = (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST') {
      sendText(res, 405, `${req.method ?? '?'} is not allowed on ${SESSION_PATH}; use POST\n`, { allow: 'POST' });
      return;
    }
    // A page of another site cannot sign its visitors in (nor, lacking the token, would it get far).
    const bad = originProblem(req, o.tls, new Set());
    if (bad !== null) {
      sendText(res, 403, `${bad}\n`);
      return;
    }
    if (!o.policy.required) {
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (!tokenOpens(bearerToken(req))) {
      o.log(`refused a dashboard sign-in from ${req.socket.remoteAddress ?? '?'}: ${bearerToken(req) === '' ? 'no token' : 'wrong token'}`);
      sendText(res, 401, 'the viewer link is not (or no longer) valid: ask the organizer for the current one\n', { 'www-authenticate': 'Bearer realm="dptrain"' });
      return;
    }
    const expiry = String(Math.floor(now() / 1000) + SESSION_SECONDS);
    const cookie = `${cookieName(req)}=${expiry}.${mac(expiry)}; Path=/; Max-Age=${SESSION_SECONDS}; HttpOnly; SameSite=Strict${o.tls ? '; Secure' : ''}`;
    res.writeHead(204, { 'set-cookie': cookie, 'cache-control': 'no-store' });
    res.end();
  };

  return (req, res) => {
    const path = pathOf(req);
    if (path === SESSION_PATH) { signIn(req, res); return true; }
    if (!o.policy.required || !VIEWER_PATHS.includes(path) || authorized(req)) return false;
    unauthorized(req, res, path);
    return true;
  };
}
