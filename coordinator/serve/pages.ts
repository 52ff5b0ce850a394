// The pages a browser opens on the coordinator's port: `/` the live
// dashboard (or, to a browser without the viewer credential, the sign-in
// page that viewer-access.ts answers with its 401), `/join` the volunteer
// page, and what they load from /static/
// (the esbuild bundles of scripts/build.js in dist/web/, and the same
// kernels.wasm Node computes with). Read into memory once at start, and
// gzipped once: a browser that accepts gzip (all do) gets the compressed
// bytes, a third of the size (what a volunteer's phone downloads:
// test/browser/bundle-size.test.ts).
//
// Every page and script is served with a Content-Security-Policy that
// allows only this origin: scripts from 'self' (the chart library is
// bundled, no CDN), WebAssembly compilation ('wasm-unsafe-eval': Chromium
// needs it to compile the kernels), Web Workers from 'self', fetch,
// EventSource and WebSocket to 'self', no framing, no plugins, no forms.
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { constants, gzipSync } from 'node:zlib';
import { wasmKernelsPath } from '../../node/kernels/wasm-load.js';
import { getRoute, sendText, type Handler } from '../../node/http/server.js';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // The join link may carry the token (in the fragment, never sent; still, no Referer at all).
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The files under /static/ and their types; anything else is a 404. */
const STATIC: Record<string, string> = {
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
  'sign-in.js': 'text/javascript; charset=utf-8',
  'join.js': 'text/javascript; charset=utf-8',
  'join.css': 'text/css; charset=utf-8',
  'tab-worker.js': 'text/javascript; charset=utf-8',
  'compute-worker.js': 'text/javascript; charset=utf-8',
  // What both workers import, once (scripts/build-web.js).
  'shared.js': 'text/javascript; charset=utf-8',
};

export interface PagesOptions {
  /** Shown in the dashboard's title. */
  title: string;
  /** The run's kernels ('wasm' or 'ts'): a tab computes with the same. */
  kernels: string;
  log: (line: string) => void;
}

/** dist/web from dist/coordinator/serve (the CLI) or from coordinator/serve (tests run the TS sources). */
export function webDir(): string | null {
  for (const url of [new URL('../../web/', import.meta.url), new URL('../../dist/web/', import.meta.url)]) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}join.html`)) return dir;
  }
  return null;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

interface StaticFile {
  type: string;
  bytes: Buffer;
  gzipped: Buffer;
}

function staticFile(type: string, bytes: Buffer): StaticFile {
  return { type, bytes, gzipped: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }) };
}

/** Whether the request's Accept-Encoding takes gzip (and does not refuse it with q=0). */
export function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';').map((p) => p.trim());
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/** The page a browser gets with the 401 at `/` (it signs in from the link's fragment), or null without the bundles. */
export function signInPage(): { html: string; headers: Record<string, string> } | null {
  const dir = webDir();
  return dir === null ? null : { html: readFileSync(`${dir}sign-in.html`, 'utf8'), headers: SECURITY_HEADERS };
}

/** The routes /, /join and /static/*. Without the bundles (not built), they answer 503 saying so. */
export function pageHandlers(opts: PagesOptions): Handler[] {
  const dir = webDir();
  if (dir === null) {
    opts.log('the dashboard and /join are unavailable: dist/web/ is missing (run `npm run build`)');
    const missing: Handler = (req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path !== '/' && path !== '/join' && !path.startsWith('/static/')) return false;
      sendText(res, 503, 'the browser bundles are not built: run `npm run build` (dist/web/ is missing)\n');
      return true;
    };
    return [missing];
  }
  const fill = (file: string) => readFileSync(`${dir}${file}`, 'utf8')
    .replaceAll('%TITLE%', escapeHtml(opts.title))
    .replaceAll('%KERNELS%', escapeHtml(opts.kernels));
  const files = new Map<string, StaticFile>();
  for (const [name, type] of Object.entries(STATIC)) files.set(`/static/${name}`, staticFile(type, readFileSync(`${dir}${name}`)));
  files.set('/static/kernels.wasm', staticFile('application/wasm', readFileSync(wasmKernelsPath())));

  const page = (path: string, html: string): Handler => getRoute(path, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', ...SECURITY_HEADERS });
    res.end(html);
  });
  const statics: Handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (!path.startsWith('/static/')) return false;
    const file = files.get(path);
    if (file === undefined) { sendText(res, 404, `no file ${path}\n`); return true; }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `${req.method ?? '?'} is not allowed on ${path}; use GET or HEAD\n`, { allow: 'GET, HEAD' });
      return true;
    }
    const gzip = acceptsGzip(req);
    const body = gzip ? file.gzipped : file.bytes;
    res.writeHead(200, {
      'content-type': file.type, 'content-length': String(body.length), 'cache-control': 'no-cache', vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}), ...SECURITY_HEADERS,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
  return [page('/', fill('index.html')), page('/join', fill('join.html')), statics];
}
