// GET /data/<hash>: the training set, content-addressed, for workers that
// have no copy of it (a tab caches it in IndexedDB, a process on disk). The
// run's token is required as a bearer token when the run has one (the
// viewer token never passes); a quarantined address is served nothing.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken, pathOf, sendText, type Handler } from '../../../node/http/server.js';
import { workerTokenProblem } from '../../../node/net/secret.js';

export interface DatasetRouteOptions {
  /** The training set's blob and its SHA-256. */
  dataset: { blob: Uint8Array; hash: string };
  /** The shared token; '' serves anyone. */
  token: string;
  /** The read-only viewer token ('' for none): refused here. */
  viewerToken: string;
  /** Whether an address is refused (quarantined). */
  refused(address: string): boolean;
  log(line: string): void;
  /** Bytes sent in one response. */
  served(bytes: number, address: string): void;
}

export function datasetRoute(opts: DatasetRouteOptions): Handler {
  const datasetPath = `/data/${opts.dataset.hash}`;
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req);
    if (!path.startsWith('/data/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `${req.method ?? '?'} is not allowed on ${path}; use GET or HEAD\n`, { allow: 'GET, HEAD' });
      return true;
    }
    const problem = workerTokenProblem(bearerToken(req), opts.token, opts.viewerToken);
    if (problem !== null) {
      opts.log(`refused a dataset download from ${req.socket.remoteAddress ?? '?'}: ${problem}`);
      sendText(res, 401, `the run's token is required (Authorization: Bearer <token>): ${problem}\n`, { 'www-authenticate': 'Bearer' });
      return true;
    }
    const address = req.socket.remoteAddress ?? '?';
    if (opts.refused(address)) {
      sendText(res, 403, `address ${address} was quarantined in this run\n`);
      return true;
    }
    if (path !== datasetPath) {
      sendText(res, 404, `this run trains on dataset ${opts.dataset.hash}, not ${path.slice(6, 70)}\n`);
      return true;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(opts.dataset.blob.length),
      // Content-addressed: the bytes behind this name never change.
      'cache-control': 'private, max-age=31536000, immutable',
      etag: `"${opts.dataset.hash}"`,
    });
    if (req.method === 'HEAD') { res.end(); return true; }
    opts.served(opts.dataset.blob.length, address);
    res.end(opts.dataset.blob);
    return true;
  };
}
