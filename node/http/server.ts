// The coordinator's HTTP(S) listener: one port for /healthz, /readyz,
// /metrics, the dataset route and (through the server's 'upgrade' event,
// wired elsewhere) the WebSocket at /ws. Routes are plain handlers tried in
// order; this module owns only what is common to all of them: 404 for a path
// no handler takes, 500 (not a crash) for a handler that throws, TLS, and a
// close() that waits neither on keep-alive connections nor on requests still
// in progress.

import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { dptError } from '../../src/errors.js';

/** Handles a request and returns true, or returns false to let the next handler try. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => boolean;

export interface HttpServerOptions {
  host: string;
  /** 0 picks a free port (see the returned `port`). */
  port: number;
  /** PEM certificate chain and private key: serve HTTPS (and so wss://) instead of HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  handlers: readonly Handler[];
  /** The command-line option that gave the address, named when it cannot be bound (default --listen). */
  option?: string;
}

export interface RunningHttpServer {
  server: HttpServer | HttpsServer;
  /** The bound port (the chosen one when `port` was 0). */
  port: number;
  /** Base URL, e.g. http://127.0.0.1:8080 or https://[::1]:8443. */
  url: string;
  /** Stop listening and end every connection, keep-alive ones and requests in progress included. */
  close(): Promise<void>;
}

/** The request's path without its query string ('/metrics?x=1' -> '/metrics'). */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/** The credential of an `Authorization: Bearer <token>` header ('' without one; the scheme's case is ignored, RFC 9110). */
export function bearerToken(req: IncomingMessage): string {
  const m = /^Bearer +(\S+) *$/i.exec(req.headers.authorization ?? '');
  return m === null ? '' : m[1];
}

/** Send a short plain-text answer (the body is left out for HEAD by node:http itself). */
export function sendText(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(body);
}

/**
 * A read-only route: takes requests for exactly `path`; answers GET and HEAD
 * with `respond`, any other method with 405 and an Allow header.
 */
export function getRoute(path: string, respond: (req: IncomingMessage, res: ServerResponse) => void): Handler {
  return (req, res) => {
    if (pathOf(req) !== path) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `${req.method ?? '?'} is not allowed on ${path}; use GET or HEAD\n`, { allow: 'GET, HEAD' });
      return true;
    }
    respond(req, res);
    return true;
  };
}

function dispatch(handlers: readonly Handler[], req: IncomingMessage, res: ServerResponse): void {
  try {
    for (const handle of handlers) if (handle(req, res)) return;
    sendText(res, 404, `no route for ${pathOf(req)}\n`);
  } catch (err) {
    // A broken handler costs one request, never the coordinator.
    if (!res.headersSent) sendText(res, 500, `internal error: ${(err as Error).message}\n`);
    else res.destroy();
  }
}

function formatUrl(tls: boolean, host: string, port: number): string {
  return `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Listen on host:port; rejects with DPT_ERR_USAGE naming the address if it cannot be bound. */
export function startHttpServer(opts: HttpServerOptions): Promise<RunningHttpServer> {
  const onRequest = (req: IncomingMessage, res: ServerResponse) => dispatch(opts.handlers, req, res);
  const server = opts.tls !== undefined ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : createHttpServer(onRequest);
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(dptError('DPT_ERR_USAGE', `cannot listen on ${opts.host}:${opts.port} (${err.code ?? err.message}); choose another ${opts.option ?? '--listen'} address or port`));
    };
    server.once('error', onError);
    server.listen(opts.port, opts.host, () => {
      server.off('error', onError);
      const port = (server.address() as AddressInfo).port;
      let closing: Promise<void> | undefined;
      resolve({
        server,
        port,
        url: formatUrl(opts.tls !== undefined, opts.host, port),
        close: () => closing ??= new Promise<void>((done, fail) => {
          server.close((err) => (err !== undefined ? fail(err) : done()));
          // server.close() ends idle keep-alive sockets but waits for requests
          // in progress (a stalled client, a slow download): end those too.
          // Sockets handed to a WebSocket server on 'upgrade' are not tracked
          // here: their owner closes them.
          server.closeAllConnections();
        }),
      });
    });
  });
}
