// One worker's WebSocket connection on the coordinator's side, a small
// state machine (transport.ts has the picture and the rules): hello ->
// fetching (the worker gets its dataset and builds the model) -> active
// (a WorkerLink of the dispatcher) -> closed. Every frame goes through the
// protocol's one decode; anything invalid, out of turn or refused closes
// the socket, naming the peer and why, and the dispatcher reassigns what
// the worker held.
import type { WebSocket } from 'ws';
import { decode, decodeFromWorker, encode, type FrameLimits } from '../../../src/protocol/codec.js';
import {
  PROTOCOL_VERSION, type ConductorMessage, type CoordinatorMessage, type Hello, type KernelName, type MemberMessage, type RefusalCode, type Session,
  type WorkerKind, type WorkerMessage,
} from '../../../src/protocol/messages.js';
import type { CollectivePort } from '../../../src/collective/port.js';
import type { Dispatcher } from '../../../src/dispatch/dispatcher.js';
import { quotedName } from '../../../src/dispatch/round.js';
import type { RangeOrder, WorkerInfo, WorkerLink } from '../../../src/dispatch/contract.js';
import { workerTokenProblem } from '../../../node/net/secret.js';

type State = 'hello' | 'fetching' | 'active' | 'closed';

/** Close codes: 1000 normal, 1001 going away, 1008 policy violation (a refused or misbehaving peer). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
const CLOSE_POLICY = 1008;

/** What a connection shares with the transport and the other connections. */
export interface ConnectionContext {
  readonly dispatcher: Dispatcher;
  readonly limits: FrameLimits;
  readonly session: Session;
  readonly configHash: string;
  readonly dataset: { readonly hash: string; readonly bytes: number };
  readonly kernels: KernelName;
  /** The shared token; '' accepts any worker. */
  readonly token: string;
  /** The read-only viewer token ('' for none): never a worker's. */
  readonly viewerToken: string;
  /** Random per coordinator start: a reconnecting worker can tell a restarted coordinator. */
  readonly runId: string;
  readonly heartbeatMs: number;
  readonly handshakeTimeoutMs: number;
  readonly readyTimeoutMs: number;
  /** Addresses refused for the rest of the run. */
  readonly quarantined: Set<string>;
  /** Frame bytes to and from workers (the dataset download excluded). */
  readonly wire: { sent: number; received: number };
  log(line: string): void;
  onRefused?: (code: RefusalCode | 'message' | 'origin', address: string) => void;
  /** A hello named this host (the dashboard's feed keeps such names from viewers). */
  onHello?: (host: string, kind: WorkerKind) => void;
  /** Whether the transport is closing, and how. */
  closing(): 'finished' | 'shutdown' | null;
  nextWorkerId(kind: WorkerKind): string;
  /** The weights of a version as one frame, encoded once for every connection. */
  weightsFrame(version: number, step: number): Uint8Array;
  /** The connection is closed: no more pings. */
  forget(conn: Connection): void;
  /** The collective (issue 21): workers that advertise a peer address become its members. */
  readonly collective?: CollectivePort;
}

export class Connection {
  state: State = 'hello';
  info: WorkerInfo | null = null;
  /** The weights version the worker holds. */
  version = -1;
  /** Last pong or frame (the link is alive), and last frame (the worker is). */
  lastHeard: number;
  lastMessage: number;
  timer: NodeJS.Timeout | null;
  tasksDone = 0;
  /** The address its peers reach it at, when it is a member of the collective (its frames then decode as a member's). */
  peerAddress: string | null = null;

  constructor(readonly cx: ConnectionContext, readonly ws: WebSocket, readonly address: string, readonly release: () => void) {
    this.lastHeard = this.lastMessage = performance.now();
    this.timer = setTimeout(() => this.drop(`said nothing within ${cx.handshakeTimeoutMs} ms of connecting`), cx.handshakeTimeoutMs);
    ws.on('message', (data, isBinary) => this.onFrame(data as Buffer, isBinary));
    ws.on('pong', () => { this.lastHeard = performance.now(); });
    ws.on('error', (err) => this.drop(err.message.includes('Max payload size exceeded')
      ? `sent a frame over the limit of ${cx.limits.maxFrameBytes} bytes` : `socket error: ${err.message}`));
    ws.on('close', (code, reason) => this.closed(`connection closed (${code}${reason.length > 0 ? ` ${reason.toString().slice(0, 200)}` : ''})`));
  }

  /** The host a hello named, before the worker has an id. */
  host: string | null = null;

  /** The --name a hello gave, if any. */
  workerName: string | undefined;

  /** How the logs name this peer: its worker id (and --name) once it has one, its host once it said hello, always its address. */
  name(): string {
    const named = quotedName(this.workerName);
    if (this.info !== null) return `worker ${this.info.id}${named} (${this.info.host}, ${this.address})`;
    return this.host === null ? `connection from ${this.address}` : `a worker${named} on ${this.host} (${this.address})`;
  }

  send(message: CoordinatorMessage): void {
    this.sendFrame(encode(message));
  }

  sendFrame(frame: Uint8Array): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.cx.wire.sent += frame.length;
    this.ws.send(frame);
  }

  onFrame(data: Buffer, isBinary: boolean): void {
    this.lastHeard = this.lastMessage = performance.now();
    this.cx.wire.received += data.length;
    if (this.state === 'closed') return;
    if (!isBinary) { this.drop('sent a text frame (the protocol is binary)'); return; }
    let msg: WorkerMessage | MemberMessage;
    try {
      const frame = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      msg = this.peerAddress === null ? decodeFromWorker(frame, this.cx.limits) : decode(frame, 'member', this.cx.limits) as MemberMessage;
    } catch (err) {
      this.cx.onRefused?.('message', this.address);
      this.drop(`bad message: ${(err as Error).message}`);
      return;
    }
    this.onMessage(msg);
  }

  /** A message of the collective, to a member. */
  sendConductor(message: ConductorMessage): void {
    this.sendFrame(encode(message));
  }

  onMessage(msg: WorkerMessage | MemberMessage): void {
    switch (msg.type) {
      case 'computed':
      case 'reduced':
      case 'peer-fault':
      case 'need':
      case 'replica-hash':
        if (this.state !== 'active') return this.drop(`sent ${msg.type} while ${this.state}`);
        this.cx.collective?.message(this.info!.id, msg);
        return;
      case 'hello':
        if (this.state !== 'hello') return this.drop('said hello twice');
        return this.onHello(msg);
      case 'ready':
        if (this.state !== 'fetching') return this.drop(`sent ready while ${this.state}`);
        if (msg.configHash !== this.cx.configHash) {
          return this.refuse('config', `its session hashes to ${msg.configHash.slice(0, 12)}, the run's to ${this.cx.configHash.slice(0, 12)}`, false);
        }
        if (msg.datasetHash !== this.cx.dataset.hash) {
          return this.refuse('dataset', `it holds dataset ${msg.datasetHash.slice(0, 12)}, the run trains on ${this.cx.dataset.hash.slice(0, 12)}`, false);
        }
        this.state = 'active';
        this.clearTimer();
        this.cx.log(`${this.name()} joined: ${this.info!.threads} thread${this.info!.threads === 1 ? '' : 's'}`);
        this.cx.dispatcher.join(this.link());
        if (this.peerAddress !== null) {
          this.cx.collective?.joined(this.info!.id, this.peerAddress, (m) => this.sendConductor(m), (reason) => this.drop(reason, 'kicked'));
        }
        return;
      case 'result':
        if (this.state !== 'active') return this.drop(`sent a result while ${this.state}`);
        this.tasksDone++;
        this.cx.dispatcher.answer(this.info!.id, { taskId: msg.taskId, version: msg.version, blocks: msg.blocks, sums: msg.sums, computeMs: msg.computeMs });
        return;
      case 'failed':
        if (this.state !== 'active') return this.drop(`sent failed while ${this.state}`);
        this.cx.dispatcher.failure(this.info!.id, msg.taskId, msg.reason);
        return;
      case 'heartbeat':
        return;
      case 'bye':
        this.cx.log(`${this.name()} left: ${msg.reason}`);
        this.state = 'closed';
        this.ws.close(CLOSE_NORMAL, 'bye');
        this.leave(`said bye: ${msg.reason}`);
        return;
    }
  }

  onHello(h: Hello): void {
    this.host = h.host;
    this.workerName = h.name;
    this.cx.onHello?.(h.host, h.kind);
    if (this.cx.quarantined.has(this.address)) {
      return this.refuse('quarantined', `address ${this.address} was quarantined earlier in this run (a worker there answered wrongly)`, false);
    }
    const closing = this.cx.closing();
    if (closing !== null) return this.refuse('finished', closing === 'finished' ? 'the run is finished' : 'the coordinator is shutting down', closing === 'shutdown');
    if (h.protocol !== PROTOCOL_VERSION) {
      return this.refuse('protocol', `protocol version ${h.protocol}, the coordinator speaks ${PROTOCOL_VERSION}`, false);
    }
    const tokenProblem = workerTokenProblem(h.token, this.cx.token, this.cx.viewerToken);
    if (tokenProblem !== null) return this.refuse('token', tokenProblem, false);
    if (h.kernels !== this.cx.kernels) {
      return this.refuse('kernels', `kernels ${h.kernels}, the run computes with ${this.cx.kernels}`, false);
    }
    const id = this.cx.nextWorkerId(h.kind);
    if (h.peer !== undefined && this.cx.collective?.accepts(h) === true) this.peerAddress = h.peer.address;
    this.info = { id, kind: h.kind, host: h.host, threads: h.threads, ...(h.name === undefined ? {} : { name: h.name }) };
    this.state = 'fetching';
    this.clearTimer();
    this.timer = setTimeout(() => this.drop(`not ready within ${this.cx.readyTimeoutMs} ms of its welcome`), this.cx.readyTimeoutMs);
    this.send({
      type: 'welcome', protocol: PROTOCOL_VERSION, workerId: id, runId: this.cx.runId, kernels: this.cx.kernels, session: this.cx.session,
      configHash: this.cx.configHash, dataset: { hash: this.cx.dataset.hash, bytes: this.cx.dataset.bytes, path: `/data/${this.cx.dataset.hash}` },
      heartbeatMs: this.cx.heartbeatMs,
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
          conn.sendFrame(conn.cx.weightsFrame(order.version, order.step));
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
        conn.cx.quarantined.add(conn.address);
        conn.cx.log(`quarantined address ${conn.address} for the rest of the run`);
        // A refusal, not a bye: the worker is not to come back (it would be refused at hello anyway).
        conn.refuse('quarantined', `quarantined: ${reason}`, false);
      },
    };
  }

  refuse(code: RefusalCode, reason: string, retry: boolean): void {
    this.cx.log(`refused ${this.name()}: ${reason}`);
    this.cx.onRefused?.(code, this.address);
    this.send({ type: 'refuse', code, reason, retry });
    this.shut(CLOSE_POLICY, `refused: ${code}`);
    this.leave(`refused: ${reason}`);
  }

  /** Disconnects a peer that misbehaved or went silent, naming it and why. */
  drop(reason: string, bye: 'kicked' | null = null, logIt = true): void {
    if (this.state === 'closed') return;
    if (logIt) this.cx.log(`dropping ${this.name()}: ${reason}`);
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
      if (this.info !== null) this.cx.log(`${this.name()} disconnected: ${reason}`);
      this.state = 'closed';
    }
    this.clearTimer();
    this.leave(reason);
  }

  /** Tells the dispatcher once (closing paths may meet). */
  leave(reason: string): void {
    this.cx.forget(this);
    this.release();
    const id = this.info?.id;
    if (id !== undefined) this.cx.dispatcher.leave(id, reason);
    if (id !== undefined && this.peerAddress !== null) this.cx.collective?.left(id, reason);
  }

  clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
