// The dashboard's live feed: `GET /live`, server-sent events. A page that
// connects gets a `snapshot` of the run status, then an `update` with what
// changed every intervalMs. One way only: a dashboard can send nothing, so
// it cannot disturb training. Bounded: at most maxClients pages at once
// (503 beyond; the dashboard tries again), and a page that does not
// read what it is sent (more than MAX_BUFFERED bytes waiting) is cut off;
// its EventSource reconnects and starts over from a snapshot. What it
// sends is what viewers may see: every message goes through forViewers
// (viewer-view.ts: no address, no host name, no secret).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WorkerSummary } from '../../../src/dispatch/contract.js';
import { getRoute, sendText, type Handler } from '../../../node/http/server.js';
import type { RunStatus, StatusCursor } from './run-status.js';
import type { LiveMessage } from './status-types.js';
import { forViewers, type ViewerRedaction } from './viewer-view.js';

const MAX_BUFFERED = 4 << 20;

export interface LiveFeedOptions {
  status: RunStatus;
  /** What viewers never see: the secrets, and the host names hellos gave. */
  redaction: ViewerRedaction;
  /** Pages connected at once (default 32). */
  maxClients?: number;
  /** Between updates (default 500 ms). */
  intervalMs?: number;
  /** Whether this peer may open one more connection (the per-address limit); it is told when the connection ends. */
  admit?: (req: IncomingMessage) => { ok: true; release: () => void } | { ok: false; reason: string };
}

export interface LiveFeed {
  handler: Handler;
  clients(): number;
  /** Sends a last update to every page and ends the feed. */
  close(): void;
}

interface Client {
  res: ServerResponse;
  cursor: StatusCursor;
  release: () => void;
}

export function createLiveFeed(opts: LiveFeedOptions): LiveFeed {
  const { status } = opts;
  const maxClients = opts.maxClients ?? 32;
  const clients = new Set<Client>();
  let timer: NodeJS.Timeout | null = null;

  const send = (c: Client, m: LiveMessage<WorkerSummary>) => {
    if (c.res.writableLength > MAX_BUFFERED) { c.res.destroy(); return; }
    c.res.write(`event: ${m.type}\ndata: ${forViewers(m, opts.redaction)}\n\n`);
  };
  const tick = () => {
    for (const c of clients) {
      const next = status.since(c.cursor);
      if (next === null) {
        const snap = status.snapshot();
        c.cursor = snap.cursor;
        send(c, snap.message);
      } else {
        c.cursor = next.cursor;
        send(c, next.message);
      }
    }
  };
  const drop = (c: Client) => {
    if (!clients.delete(c)) return;
    c.release();
    if (clients.size === 0 && timer !== null) { clearInterval(timer); timer = null; }
  };

  const handler = getRoute('/live', (req, res) => {
    if (clients.size >= maxClients) {
      sendText(res, 503, `the live feed serves ${maxClients} pages at once; try again later\n`, { 'retry-after': '10' });
      return;
    }
    const admitted = opts.admit?.(req) ?? { ok: true as const, release: () => {} };
    if (!admitted.ok) {
      sendText(res, 429, `${admitted.reason}\n`, { 'retry-after': '10' });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // Reverse proxies (nginx) must not buffer the stream.
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') { res.end(); admitted.release(); return; }
    res.write('retry: 2000\n\n');
    const snap = status.snapshot();
    const client: Client = { res, cursor: snap.cursor, release: admitted.release };
    clients.add(client);
    send(client, snap.message);
    res.on('close', () => drop(client));
    timer ??= setInterval(tick, opts.intervalMs ?? 500);
    timer.unref();
  });

  return {
    handler,
    clients: () => clients.size,
    close() {
      tick();
      for (const c of [...clients]) { c.res.end(); drop(c); }
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
  };
}
