// The WebSocket transport: workers in other processes (`dptrain worker`)
// and, through the same protocol, browser tabs, each one WorkerLink of the
// dispatcher. docs/PROTOCOL.md is the reader's guide; this file is the
// coordinator's side of it.
//
// One Connection per socket, a small state machine:
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
// Browser-facing guards, before a socket is accepted: the `Origin` check
// (net/origin.ts), the per-address connection limit (net/address-limit.ts);
// after: the token in hello, and the quarantine. A worker quarantined by the
// dispatcher (its answer differed from the referee's) is disconnected, and
// its network address is refused (`refuse {code: 'quarantined'}`, sent to
// the quarantined connection too) and served no dataset for the rest of the
// run. The address is the identity a worker
// cannot shed by reconnecting; workers behind one NAT share it, and a liar
// with many addresses can come back (to be caught again).
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeFromWorker, encode, type FrameLimits } from '../../../src/protocol/codec.js';
import {
  PROTOCOL_VERSION, type CoordinatorMessage, type Hello, type KernelName, type RefusalCode, type Session, type WorkerMessage,
} from '../../../src/protocol/messages.js';
import { treeHeight } from '../../../src/reduce/tree.js';
import type { Dispatcher } from '../../../src/dispatch/dispatcher.js';
import type { RangeOrder, WorkerInfo, WorkerLink } from '../../../src/dispatch/contract.js';
import type { WeightsBoard } from '../../../src/dispatch/weights-board.js';
import { pathOf, sendText, type Handler } from '../../../node/http/server.js';
import type { AddressLimit } from '../../../node/net/address-limit.js';
import { originProblem } from '../../../node/net/origin.js';
import { tokenMatches } from '../../../node/net/secret.js';

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
  /** Whether the server speaks TLS (the scheme of its own origin). */
  tls?: boolean;
  /** Origins besides the coordinator's own whose pages may connect (`--allow-origin`). */
  allowOrigins?: ReadonlySet<string>;
  /** Connections per address (shared with the dashboard's feed). */
  addressLimit?: AddressLimit;
  /** Bytes of the dataset sent in one response. */
  onDatasetServed?: (bytes: number, address: string) => void;
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

type State = 'hello' | 'fetching' | 'active' | 'closed';

/** Close codes: 1000 normal, 1001 going away, 1008 policy violation (a refused or misbehaving peer). */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY = 1008;

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
    maxPayloadFloats: { result: maxBlocks * opts.gradLen },
  };
  const wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxFrameBytes, perMessageDeflate: false });
  const live = new Set<Connection>();
  let nextId = 1;
  let closing: 'finished' | 'shutdown' | null = null;
  let bytesServed = 0;
  let bytesSent = 0;
  let bytesReceived = 0;
  const quarantined = new Set<string>();
  let weightsFrame: { version: number; frame: Uint8Array } | null = null;

  function framedWeights(version: number, step: number): Uint8Array {
    if (weightsFrame?.version !== version) {
      weightsFrame = { version, frame: encode({ type: 'weights', version, step, params: board.params }) };
    }
    return weightsFrame.frame;
  }

  class Connection {
    state: State = 'hello';
    info: WorkerInfo | null = null;
    /** The weights version the worker holds. */
    version = -1;
    /** Last pong or frame (the link is alive), and last frame (the worker is). */
    lastHeard: number;
    lastMessage: number;
    timer: NodeJS.Timeout | null;
    tasksDone = 0;

    constructor(readonly ws: WebSocket, readonly address: string, readonly release: () => void) {
      this.lastHeard = this.lastMessage = performance.now();
      this.timer = setTimeout(() => this.drop(`said nothing within ${handshakeTimeoutMs} ms of connecting`), handshakeTimeoutMs);
      ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
      ws.on('pong', () => { this.lastHeard = performance.now(); });
      ws.on('error', (err) => this.drop(err.message.includes('Max payload size exceeded')
        ? `sent a frame over the limit of ${limits.maxFrameBytes} bytes` : `socket error: ${err.message}`));
      ws.on('close', (code, reason) => this.closed(`connection closed (${code}${reason.length > 0 ? ` ${reason.toString().slice(0, 200)}` : ''})`));
    }

    /** The host a hello named, before the worker has an id. */
    host: string | null = null;

    /** How the logs name this peer: its worker id once it has one, its host once it said hello, always its address. */
    name(): string {
      if (this.info !== null) return `worker ${this.info.id} (${this.info.host}, ${this.address})`;
      return this.host === null ? `connection from ${this.address}` : `a worker on ${this.host} (${this.address})`;
    }

    send(message: CoordinatorMessage): void {
      this.sendFrame(encode(message));
    }

    sendFrame(frame: Uint8Array): void {
      if (this.ws.readyState !== this.ws.OPEN) return;
      bytesSent += frame.length;
      this.ws.send(frame);
    }

    onFrame(data: Buffer, isBinary: boolean): void {
      this.lastHeard = this.lastMessage = performance.now();
      bytesReceived += data.length;
      if (this.state === 'closed') return;
      if (!isBinary) { this.drop('sent a text frame (the protocol is binary)'); return; }
      let msg: WorkerMessage;
      try {
        msg = decodeFromWorker(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), limits);
      } catch (err) {
        opts.onRefused?.('message', this.address);
        this.drop(`bad message: ${(err as Error).message}`);
        return;
      }
      this.onMessage(msg);
    }

    onMessage(msg: WorkerMessage): void {
      switch (msg.type) {
        case 'hello':
          if (this.state !== 'hello') return this.drop('said hello twice');
          return this.onHello(msg);
        case 'ready':
          if (this.state !== 'fetching') return this.drop(`sent ready while ${this.state}`);
          if (msg.configHash !== opts.configHash) {
            return this.refuse('config', `its session hashes to ${msg.configHash.slice(0, 12)}, the run's to ${opts.configHash.slice(0, 12)}`, false);
          }
          if (msg.datasetHash !== opts.dataset.hash) {
            return this.refuse('dataset', `it holds dataset ${msg.datasetHash.slice(0, 12)}, the run trains on ${opts.dataset.hash.slice(0, 12)}`, false);
          }
          this.state = 'active';
          this.clearTimer();
          log(`${this.name()} joined: ${this.info!.threads} thread${this.info!.threads === 1 ? '' : 's'}`);
          dispatcher.join(this.link());
          return;
        case 'result':
          if (this.state !== 'active') return this.drop(`sent a result while ${this.state}`);
          this.tasksDone++;
          dispatcher.answer(this.info!.id, { taskId: msg.taskId, version: msg.version, blocks: msg.blocks, sums: msg.sums, computeMs: msg.computeMs });
          return;
        case 'failed':
          if (this.state !== 'active') return this.drop(`sent failed while ${this.state}`);
          dispatcher.failure(this.info!.id, msg.taskId, msg.reason);
          return;
        case 'heartbeat':
          return;
        case 'bye':
          log(`${this.name()} left: ${msg.reason}`);
          this.state = 'closed';
          this.ws.close(CLOSE_NORMAL, 'bye');
          this.leave(`said bye: ${msg.reason}`);
          return;
      }
    }

    onHello(h: Hello): void {
      this.host = h.host;
      if (quarantined.has(this.address)) {
        return this.refuse('quarantined', `address ${this.address} was quarantined earlier in this run (a worker there answered wrongly)`, false);
      }
      if (closing !== null) return this.refuse('finished', closing === 'finished' ? 'the run is finished' : 'the coordinator is shutting down', closing === 'shutdown');
      if (h.protocol !== PROTOCOL_VERSION) {
        return this.refuse('protocol', `protocol version ${h.protocol}, the coordinator speaks ${PROTOCOL_VERSION}`, false);
      }
      if (opts.token !== '' && !tokenMatches(h.token, opts.token)) {
        return this.refuse('token', h.token === '' ? 'no token given (--token-file or DPTRAIN_TOKEN)' : 'wrong token', false);
      }
      if (h.kernels !== opts.kernels) {
        return this.refuse('kernels', `kernels ${h.kernels}, the run computes with ${opts.kernels}`, false);
      }
      const id = `${h.kind === 'tab' ? 'b' : 'p'}${nextId++}`;
      this.info = { id, kind: h.kind, host: h.host, threads: h.threads, ...(h.name === undefined ? {} : { name: h.name }) };
      this.state = 'fetching';
      this.clearTimer();
      this.timer = setTimeout(() => this.drop(`not ready within ${readyTimeoutMs} ms of its welcome`), readyTimeoutMs);
      this.send({
        type: 'welcome', protocol: PROTOCOL_VERSION, workerId: id, runId, kernels: opts.kernels, session: opts.session,
        configHash: opts.configHash, dataset: { hash: opts.dataset.hash, bytes: opts.dataset.blob.length, path: `/data/${opts.dataset.hash}` },
        heartbeatMs,
      });
    }

    link(): WorkerLink {
      const conn = this;
      return {
        info: conn.info!,
        send(order: RangeOrder) {
          if (conn.state !== 'active') {
            // Raced with a close: the dispatcher hears of the leave right after.
            return;
          }
          if (conn.version !== order.version) {
            conn.sendFrame(framedWeights(order.version, order.step));
            conn.version = order.version;
          }
          conn.send({
            type: 'task', taskId: order.taskId, step: order.step, version: order.version, k: order.k, rows: order.rows,
            start: order.start, end: order.end, indices: Array.from(order.indices),
            ...(order.fault === undefined ? {} : { fault: order.fault }),
          });
        },
        drop(reason: string) {
          // The dispatcher has logged why, naming the worker.
          conn.drop(reason, 'kicked', false);
        },
        quarantine(reason: string) {
          quarantined.add(conn.address);
          log(`quarantined address ${conn.address} for the rest of the run`);
          // A refusal, not a bye: the worker is not to come back (it would be refused at hello anyway).
          conn.refuse('quarantined', `quarantined: ${reason}`, false);
        },
      };
    }

    refuse(code: RefusalCode, reason: string, retry: boolean): void {
      log(`refused ${this.name()}: ${reason}`);
      opts.onRefused?.(code, this.address);
      this.send({ type: 'refuse', code, reason, retry });
      this.shut(CLOSE_POLICY, `refused: ${code}`);
      this.leave(`refused: ${reason}`);
    }

    /** Disconnects a peer that misbehaved or went silent, naming it and why. */
    drop(reason: string, bye: 'kicked' | null = null, logIt = true): void {
      if (this.state === 'closed') return;
      if (logIt) log(`dropping ${this.name()}: ${reason}`);
      if (bye !== null) this.send({ type: 'bye', code: bye, reason });
      this.shut(CLOSE_POLICY, reason);
      this.leave(reason);
    }

    shut(code: number, reason: string): void {
      this.state = 'closed';
      this.clearTimer();
      // The close reason must fit a control frame (123 bytes).
      this.ws.close(code, Buffer.from(reason).subarray(0, 120).toString());
      // A peer that does not complete the closing handshake is cut off.
      setTimeout(() => this.ws.terminate(), 2000).unref();
    }

    closed(reason: string): void {
      if (this.state !== 'closed') {
        if (this.info !== null) log(`${this.name()} disconnected: ${reason}`);
        this.state = 'closed';
      }
      this.clearTimer();
      this.leave(reason);
    }

    /** Tells the dispatcher once (closing paths may meet). */
    leave(reason: string): void {
      live.delete(this);
      this.release();
      const id = this.info?.id;
      if (id !== undefined) dispatcher.leave(id, reason);
    }

    clearTimer(): void {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
    }
  }


  const reject = (socket: Duplex, status: string, body: string) => {
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  };
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(req) !== '/ws') {
      reject(socket, '404 Not Found', `no WebSocket at ${pathOf(req)}\n`);
      return;
    }
    const address = req.socket.remoteAddress ?? '?';
    const bad = originProblem(req, opts.tls === true, opts.allowOrigins ?? new Set());
    if (bad !== null) {
      log(`refused a WebSocket from ${address}: ${bad}`);
      opts.onRefused?.('origin', address);
      reject(socket, '403 Forbidden', `${bad}\n`);
      return;
    }
    const release = opts.addressLimit === undefined ? () => {} : opts.addressLimit.acquire(address);
    if (release === null) {
      log(`refused a WebSocket from ${address}: ${opts.addressLimit!.max} connections from that address are open (--max-connections-per-address)`);
      opts.onRefused?.('full', address);
      reject(socket, '429 Too Many Requests', `too many connections from ${address}\n`);
      return;
    }
    socket.once('close', release);
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(ws, address, release);
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
    }
  }, heartbeatMs);
  heartbeat.unref();

  const datasetPath = `/data/${opts.dataset.hash}`;
  const datasetHandler: Handler = (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req);
    if (!path.startsWith('/data/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendText(res, 405, `${req.method ?? '?'} is not allowed on ${path}; use GET or HEAD\n`, { allow: 'GET, HEAD' });
      return true;
    }
    if (opts.token !== '') {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!tokenMatches(given, opts.token)) {
        log(`refused a dataset download from ${req.socket.remoteAddress ?? '?'}: ${given === '' ? 'no token' : 'wrong token'}`);
        sendText(res, 401, 'a token is required (Authorization: Bearer <token>)\n', { 'www-authenticate': 'Bearer' });
        return true;
      }
    }
    const address = req.socket.remoteAddress ?? '?';
    if (quarantined.has(address)) {
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
    bytesServed += opts.dataset.blob.length;
    opts.onDatasetServed?.(opts.dataset.blob.length, address);
    res.end(opts.dataset.blob);
    return true;
  };

  return {
    datasetHandler,
    datasetBytesServed: () => bytesServed,
    quarantined: () => [...quarantined],
    wireBytes: () => ({ sent: bytesSent, received: bytesReceived }),
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

