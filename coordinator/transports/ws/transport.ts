// The WebSocket transport: workers in other processes (`dptrain worker`)
// and, through the same protocol, browser tabs, each one WorkerLink of the
// dispatcher. docs/PROTOCOL.md is the reader's guide; this file is the
// coordinator's side of it.
//
// One Connection per socket (connection.ts), a small state machine:
//
//   hello ──hello ok──▶ fetching ──ready ok──▶ active ──▶ closed
//     │ (silent for handshakeTimeoutMs, bad hello: refuse/drop)    ▲
//     └──────────────────────────────────────────────────────────┘
//
// Every frame goes through the protocol's one decode (size caps from the
// model, the zod schema of its type, who may send it); anything invalid, in
// the wrong state or from a peer that stopped answering pings is logged with
// the peer's address and worker id, and the socket is closed. The
// dispatcher then reassigns whatever that worker held: a worker's mistake
// costs its range, never the run.
//
// Weights go to a worker only when it lacks the step's version, as one
// `weights` frame encoded once per version and shared by every connection.
//
// Browser-facing guards, before a socket is accepted (upgrade.ts): the
// `Origin` check, the per-address connection limit;
// after: the token in hello, and the quarantine. A worker quarantined by the
// dispatcher (its answer differed from the referee's) is disconnected, and
// its network address is refused (`refuse {code: 'quarantined'}`, sent to
// the quarantined connection too) and served no dataset for the rest of the
// run. The address is the identity a worker
// cannot shed by reconnecting; workers behind one NAT share it, and a liar
// with many addresses can come back (to be caught again).
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { encode, type FrameLimits } from '../../../src/protocol/codec.js';
import type { KernelName, RefusalCode, Session, WorkerKind } from '../../../src/protocol/messages.js';
import { treeHeight } from '../../../src/reduce/tree.js';
import type { Dispatcher } from '../../../src/dispatch/dispatcher.js';
import type { WeightsBoard } from '../../../src/dispatch/weights-board.js';
import type { Handler } from '../../../node/http/server.js';
import type { AddressLimit } from '../../../node/net/address-limit.js';
import { CLOSE_GOING_AWAY, CLOSE_NORMAL, Connection, type ConnectionContext } from './connection.js';
import type { CollectivePort } from '../../../src/collective/port.js';
import { datasetRoute } from './dataset-route.js';
import { admitUpgrade } from './upgrade.js';

export interface WsTransportOptions {
  /** The coordinator's HTTP(S) server: the transport takes its upgrades to /ws. */
  server: HttpServer | HttpsServer;
  dispatcher: Dispatcher;
  board: WeightsBoard;
  /** What workers compute (model, loss, seed, largest batch) and its hash. */
  session: Session;
  configHash: string;
  /** The training set's blob and its SHA-256, served at /data/<hash>. */
  dataset: { blob: Uint8Array; hash: string };
  kernels: KernelName;
  /** The shared token; '' accepts any worker. */
  token: string;
  /** The read-only viewer token ('' for none): refused at hello and at /data. */
  viewerToken?: string;
  /** Floats per gradient vector and the largest micro-shard count (they size the frame caps). */
  gradLen: number;
  maxMicroShards: number;
  /** A peer silent this long (no pong, no message) is disconnected; pings go out 5 times as often. */
  peerTimeoutMs: number;
  /** A connection that has not said hello within this long is closed. Default peerTimeoutMs. */
  handshakeTimeoutMs?: number;
  /** A welcomed worker must be ready (dataset fetched, model built) within this long. Default 10 min. */
  readyTimeoutMs?: number;
  log: (line: string) => void;
  /** A connection was refused (metrics). */
  onRefused?: (code: RefusalCode | 'message' | 'origin', address: string) => void;
  /** A hello named this host (a tab's browser, a process's host name). */
  onHello?: (host: string, kind: WorkerKind) => void;
  /** Whether the server speaks TLS (the scheme of its own origin). */
  tls?: boolean;
  /** Origins besides the coordinator's own whose pages may connect (`--allow-origin`). */
  allowOrigins?: ReadonlySet<string>;
  /** Connections per address (shared with the dashboard's feed). */
  addressLimit?: AddressLimit;
  /** Bytes of the dataset sent in one response. */
  onDatasetServed?: (bytes: number, address: string) => void;
  /** The collective (issue 21): workers that advertise a peer address become its members. */
  collective?: CollectivePort;
}

export interface WsTransport {
  /** The /data/<hash> route for the HTTP server's handlers. */
  readonly datasetHandler: Handler;
  /** Bytes of the dataset sent so far (a returning worker with a cache fetches none). */
  datasetBytesServed(): number;
  /** Addresses quarantined so far. */
  quarantined(): string[];
  /** Bytes of frames sent to and received from workers so far (WebSocket payloads, the dataset download excluded). */
  wireBytes(): { sent: number; received: number };
  /** Says bye to every worker (`finished`: the run is over; `shutdown`: the coordinator stops, come back later) and closes. */
  close(code: 'finished' | 'shutdown', reason: string): Promise<void>;
}

/** The `alive` frame, the same bytes every time. */
const ALIVE = encode({ type: 'alive' });

export function attachWsTransport(opts: WsTransportOptions): WsTransport {
  const { dispatcher, board, log } = opts;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? opts.peerTimeoutMs;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 600_000;
  // Workers send a heartbeat this often (the welcome says so); pings go out as often.
  const heartbeatMs = Math.max(20, Math.floor(opts.peerTimeoutMs / 5));
  // Random per coordinator start: a reconnecting worker can tell a restarted coordinator.
  const runId = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  // A range has at most 2 ceil(log2 K) aligned blocks: the largest answer a worker may send.
  const maxBlocks = 2 * treeHeight(opts.maxMicroShards) + 1;
  const limits: FrameLimits = {
    maxFrameBytes: maxBlocks * opts.gradLen * 4 + (64 << 10),
    // A member's reduced slice is at most one gradient vector.
    maxPayloadFloats: { result: maxBlocks * opts.gradLen, reduced: opts.gradLen },
  };
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false });
  const live = new Set<Connection>();
  let nextId = 1;
  const wire = { sent: 0, received: 0 };
  let closing: 'finished' | 'shutdown' | null = null;
  let bytesServed = 0;
  const quarantined = new Set<string>();
  let weightsFrame: { version: number; frame: Uint8Array } | null = null;

  function framedWeights(version: number, step: number): Uint8Array {
    if (weightsFrame?.version !== version) {
      weightsFrame = { version, frame: encode({ type: 'weights', version, step, params: board.params }) };
    }
    return weightsFrame.frame;
  }

  const cx: ConnectionContext = {
    dispatcher, limits, session: opts.session, configHash: opts.configHash,
    dataset: { hash: opts.dataset.hash, bytes: opts.dataset.blob.length }, kernels: opts.kernels, token: opts.token,
    viewerToken: opts.viewerToken ?? '', onHello: opts.onHello,
    runId, heartbeatMs, handshakeTimeoutMs, readyTimeoutMs, quarantined, wire, log, onRefused: opts.onRefused,
    closing: () => closing,
    nextWorkerId: (kind) => `${kind === 'tab' ? 'b' : 'p'}${nextId++}`,
    weightsFrame: framedWeights,
    forget: (conn) => { live.delete(conn); },
    ...(opts.collective === undefined ? {} : { collective: opts.collective }),
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const release = admitUpgrade(req, socket, {
      tls: opts.tls === true, allowOrigins: opts.allowOrigins ?? new Set(), addressLimit: opts.addressLimit, log, onRefused: opts.onRefused,
    });
    if (release === null) return;
    const address = req.socket.remoteAddress ?? '?';
    socket.once('close', release);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(cx, ws, address, release);
      if (closing !== null && closing === 'finished') {
        conn.refuse('finished', 'the run is finished', false);
        return;
      }
      live.add(conn);
    });
  };
  opts.server.on('upgrade', onUpgrade);

  // Liveness: a ping per connection every peerTimeoutMs / 5; a peer not heard from for peerTimeoutMs is gone.
  const heartbeat = setInterval(() => {
    const now = performance.now();
    for (const conn of live) {
      if (conn.state === 'closed') continue;
      if (now - conn.lastHeard > opts.peerTimeoutMs) {
        conn.drop(`silent for ${Math.round(now - conn.lastHeard)} ms (no pong, no message; --peer-timeout-ms ${opts.peerTimeoutMs})`);
        continue;
      }
      // Pongs come from the peer's network stack; heartbeats from the worker itself, even while its threads compute.
      if (conn.state === 'active' && now - conn.lastMessage > opts.peerTimeoutMs) {
        conn.drop(`sent nothing for ${Math.round(now - conn.lastMessage)} ms (a worker sends a heartbeat every ${heartbeatMs} ms; --peer-timeout-ms ${opts.peerTimeoutMs})`);
        continue;
      }
      conn.ws.ping();
      if (conn.state === 'fetching' || conn.state === 'active') conn.sendFrame(ALIVE);
    }
  }, heartbeatMs);
  heartbeat.unref();


  const datasetHandler = datasetRoute({
    dataset: opts.dataset, token: opts.token, viewerToken: opts.viewerToken ?? '', log,
    refused: (address) => quarantined.has(address),
    served: (bytes, address) => { bytesServed += bytes; opts.onDatasetServed?.(bytes, address); },
  });

  return {
    datasetHandler,
    datasetBytesServed: () => bytesServed,
    quarantined: () => [...quarantined],
    wireBytes: () => ({ ...wire }),
    async close(code, reason) {
      closing = code;
      clearInterval(heartbeat);
      opts.server.off('upgrade', onUpgrade);
      const closes: Promise<void>[] = [];
      for (const conn of [...live]) {
        if (conn.state !== 'closed') conn.send({ type: 'bye', code, reason });
        closes.push(new Promise((resolve) => {
          if (conn.ws.readyState === conn.ws.CLOSED) { resolve(); return; }
          conn.ws.once('close', () => resolve());
          conn.shut(code === 'finished' ? CLOSE_NORMAL : CLOSE_GOING_AWAY, reason);
        }));
      }
      await Promise.all(closes);
      wss.close();
    },
  };
}

