// The coordinator's network face (`train --listen HOST:PORT`): one HTTP(S)
// port with /healthz, /readyz, /metrics, the training set at /data/<hash>,
// the WebSocket at /ws, where worker processes and browser tabs join the
// run's dispatcher, the live dashboard at / (fed by /live) and the volunteer
// page at /join. Wiring only: the routes, the transport, the pages, the feed,
// the metrics and who may watch (viewer-access.ts) are modules of their own.
import { readFileSync } from 'node:fs';
import { encodeDataset } from '../../src/data/binary.js';
import type { Dataset } from '../../src/data/dataset.js';
import { dptError } from '../../src/errors.js';
import { hashJson } from '../../src/protocol/content-hash.js';
import type { KernelName, RefusalCode, Session } from '../../src/protocol/messages.js';
import { sha256Node } from '../../node/files/blobs.js';
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { healthHandlers, type Phase } from './health.js';
import { pageHandlers, signInPage } from './pages.js';
import { createLiveFeed, type LiveFeed } from './live/live-feed.js';
import { HostBook } from './live/viewer-view.js';
import { dashboardLine, viewerGate, viewerPolicy, type ViewerPolicy } from './viewer-access.js';
import type { RunStatus } from './live/run-status.js';
import { AddressLimit } from '../../node/net/address-limit.js';
import { createRunMetrics, type RefusalReason, type RunMetrics } from './metrics.js';
import { startHttpServer, type Handler } from '../../node/http/server.js';
import type { ListenAddress } from '../../node/net/address.js';
import type { CollectivePort } from '../../src/collective/port.js';
import { attachWsTransport, type WsTransport } from '../transports/ws/transport.js';

export interface ClusterOptions {
  listen: ListenAddress;
  /** Start training once this many workers (threads included) are connected. */
  minWorkers: number;
  /** The shared token ('' accepts any worker). */
  token: string;
  /** PEM files: serve https and wss. */
  tls?: { certFile: string; keyFile: string };
  /** A peer silent this long is disconnected. */
  peerTimeoutMs: number;
  /** Origins besides the coordinator's own whose pages may open a WebSocket (`--allow-origin`). */
  allowOrigins: string[];
  /** WebSocket and dashboard connections at once from one address. */
  maxConnectionsPerAddress: number;
  /** Fraction of the ranges answered by processes and tabs that another worker recomputes (`--verify-fraction`). */
  verifyFraction: number;
  /** What the dashboard shows (the CLI feeds it); without it, / and /live are not served. */
  status?: RunStatus;
  /** Who may watch the run (/, /live, /metrics); default: viewerPolicy with no viewer token. */
  viewer?: ViewerPolicy;
}

export interface CoordinatorNode {
  /** ws(s)://host:port/ws */
  readonly wsUrl: string;
  readonly metrics: RunMetrics;
  readonly transport: WsTransport;
  setPhase(phase: Phase): void;
  close(outcome: 'finished' | 'interrupted' | 'failed', reason: string): Promise<void>;
}

const REFUSAL_METRIC: Partial<Record<RefusalCode | 'message' | 'origin', RefusalReason>> = {
  token: 'bad-token', protocol: 'protocol-version', message: 'invalid-message', finished: 'run-finished',
  origin: 'bad-origin', full: 'too-many-connections', quarantined: 'quarantined',
};

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw dptError('DPT_ERR_USAGE', `${what} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function startCoordinatorNode(opts: {
  cluster: ClusterOptions;
  dispatcher: Dispatcher;
  board: WeightsBoard;
  session: Session;
  train: Dataset;
  kernels: KernelName;
  gradLen: number;
  maxMicroShards: number;
  log: (line: string) => void;
  /** The collective engine's port: members join it through the transport. */
  collective?: CollectivePort;
}): Promise<CoordinatorNode> {
  const { cluster, log } = opts;
  const tls = cluster.tls === undefined ? undefined : { cert: readPem(cluster.tls.certFile, '--tls-cert'), key: readPem(cluster.tls.keyFile, '--tls-key') };
  let phase: Phase = 'starting';
  const metrics = createRunMetrics();
  let transport: WsTransport | null = null;
  const addressLimit = new AddressLimit(cluster.maxConnectionsPerAddress);
  const status = cluster.status;
  const viewer = cluster.viewer ?? viewerPolicy({ listenHost: cluster.listen.host, token: cluster.token, viewerToken: '', publicDashboard: false });
  const hosts = new HostBook();
  let live: LiveFeed | null = null;
  if (status !== undefined) {
    live = createLiveFeed({
      status,
      redaction: { secrets: [cluster.token, viewer.viewerToken], hosts },
      admit(req) {
        const address = req.socket.remoteAddress ?? '?';
        const release = addressLimit.acquire(address);
        return release === null ? { ok: false, reason: `too many connections from ${address}` } : { ok: true, release };
      },
    });
  }
  const handlers: Handler[] = [
    ...healthHandlers(() => phase),
    viewerGate({ policy: viewer, token: cluster.token, tls: tls !== undefined, signInPage: signInPage(), log }),
    metrics.handler,
    (req, res) => transport?.datasetHandler(req, res) ?? false,
    ...(live === null ? [] : [live.handler, ...pageHandlers({ title: status!.info.name, kernels: opts.kernels, log })]),
  ];
  const http = await startHttpServer({ host: cluster.listen.host, port: cluster.listen.port, ...(tls === undefined ? {} : { tls }), handlers });
  const blob = encodeDataset(opts.train);
  transport = attachWsTransport({
    server: http.server, dispatcher: opts.dispatcher, board: opts.board, session: opts.session, configHash: hashJson(opts.session),
    dataset: { blob, hash: sha256Node(blob) }, kernels: opts.kernels, token: cluster.token, viewerToken: viewer.viewerToken,
    onHello: (host, kind) => hosts.add(host, kind),
    gradLen: opts.gradLen, maxMicroShards: opts.maxMicroShards, peerTimeoutMs: cluster.peerTimeoutMs, log,
    onRefused: (code) => metrics.connectionRefused(REFUSAL_METRIC[code] ?? 'other'),
    tls: tls !== undefined, allowOrigins: new Set(cluster.allowOrigins), addressLimit,
    onDatasetServed: (bytes, address) => {
      metrics.datasetServed(bytes);
      log(`dataset: sent ${bytes} bytes to ${address}`);
    },
    ...(opts.collective === undefined ? {} : { collective: opts.collective }),
  });
  const wsUrl = `${tls === undefined ? 'ws' : 'wss'}${http.url.slice(http.url.indexOf(':'))}/ws`;
  const setPhase = (p: Phase) => { phase = p; metrics.setPhase(p); status?.setPhase(p); };
  setPhase('waiting-for-workers');
  log(`listening on ${wsUrl}${cluster.token === '' ? ' (no token: any worker may join)' : ' (token required)'}`);
  if (live !== null) {
    log(dashboardLine(http.url, viewer));
    log(`volunteers: ${http.url}/join${cluster.token === '' ? '' : '#token=<the token>'}`);
  } else if (viewer.required) {
    log(`/metrics takes Authorization: Bearer <the run's token or the viewer token>`);
  }
  return {
    wsUrl, metrics, transport, setPhase,
    async close(outcome, reason) {
      setPhase(outcome === 'failed' ? 'failed' : outcome === 'finished' ? 'done' : 'finishing');
      const t = transport;
      await t.close(outcome === 'interrupted' ? 'shutdown' : 'finished', reason);
      live?.close(); // after the workers left: the pages see the final state
      log(`dataset: ${t.datasetBytesServed()} bytes served in this run` +
        (t.quarantined().length === 0 ? '' : `; quarantined addresses: ${t.quarantined().join(', ')}`));
      await http.close();
    },
  };
}
