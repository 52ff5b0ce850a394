// `dptrain worker --connect ws://HOST:PORT`: a worker process of a cluster.
//
// It connects (and reconnects, with exponential backoff and jitter, when the
// coordinator goes away or restarts) and speaks the worker protocol of
// worker/session/session.ts, the same as a volunteer tab. What is its own:
// the socket (ws, with a zero mask), the training set by content hash (from
// --data, its disk cache, or downloaded from the coordinator and verified),
// what computes (this thread, or its own worker threads with a local
// dispatcher reducing in the fixed tree order: range-compute.ts), and a
// `crash` fault that exits the process.
//
// Exit codes: 0 when the run is finished (the coordinator said so) or the
// worker was asked to stop; run() throws a DptrainError (exit 1, one
// `dptrain: error [CODE]: ...` line) when it was refused for good
// (DPT_ERR_REFUSED: wrong token, protocol, kernels, quarantined), cannot use
// the session (DPT_ERR_WORKER), or reached no coordinator within
// giveUpAfterMs without ever being welcomed (DPT_ERR_CONNECT; see
// session/reconnect.ts). One line per reconnection attempt.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import { decodeDataset } from '../src/data/binary.js';
import type { Dataset } from '../src/data/dataset.js';
import { dptError } from '../src/errors.js';
import { FROM_COORDINATOR_LIMITS } from '../src/protocol/codec.js';
import type { Task, Welcome } from '../src/protocol/messages.js';
import { alignedBlocks } from '../src/reduce/tree.js';
import { activeKernelKind } from '../src/tensor/setup.js';
import { readBlob, readCachedBlob, sha256Node, writeBlob } from '../node/files/blobs.js';
import { httpUrl, type ListenAddress } from '../node/net/address.js';
import { treeHeight } from '../src/reduce/tree.js';
import { PeerLinks } from './peer/links.js';
import { NetMember } from './peer/net-member.js';
import { inlineCompute, threadedCompute, type RangeCompute } from './range-compute.js';
import { GIVE_UP_AFTER_MS, Reconnector } from './session/reconnect.js';
import { WorkerSession, type Computed, type SessionEnd, type Wire } from './session/session.js';

/**
 * Where a worker stands, for its /readyz (worker/health-server.ts):
 * `connecting` (no coordinator yet, or reconnecting to one that went away),
 * `preparing` (welcomed: fetching the dataset, starting its threads),
 * `ready` (says ready; computes the tasks it is given), `leaving` (stopped,
 * or the run is finished).
 */
export type WorkerState = 'connecting' | 'preparing' | 'ready' | 'leaving';

export interface NetWorkerOptions {
  url: URL;
  /** The shared token ('' for none). */
  token: string;
  threads: number;
  name?: string;
  /** A local copy of the training set (verified by hash) instead of downloading it. */
  dataFile?: string;
  /** Where downloaded datasets are kept by hash. */
  cacheDir: string;
  /** Extra CA certificate(s) to trust for wss:// and https:// (a self-signed coordinator). */
  tlsCa?: Buffer;
  /** Reconnect backoff: first delay and cap, ms. */
  backoffMs?: { first: number; max: number };
  /** Give up after this long without ever having been welcomed by a coordinator (0: never; default 5 minutes). */
  giveUpAfterMs?: number;
  log: (line: string) => void;
  /** The version string of this program, for hello. */
  software: string;
  /** Join the collective (issue 21): listen for peers here, and tell them this address (default: the listen address, or this host's name when it listens on all interfaces). */
  peer?: { listen: ListenAddress; advertise?: string; tls?: { cert: Buffer; key: Buffer } };
}

/** What a worker holds for one session (model, loss, seed, dataset): kept across reconnects to the same run. */
interface Held {
  readonly key: string;
  readonly compute: RangeCompute;
}

/** HOST:PORT, with an IPv6 host in brackets. */
function withPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export class NetWorker {
  private held: Held | null = null;
  private session: WorkerSession | null = null;
  private stopping = false;
  /** The answers' block sums, reused from task to task (the frame encoder copies them out). */
  private sums = new Float32Array(0);
  private exitCode: number | null = null;
  private wake: (() => void) | null = null;
  private current: WorkerState = 'connecting';
  /** What ended the last connection attempt (the socket's error), if anything did. */
  private lastError: string | null = null;
  /** The collective: this process's peer links, and its member while a coordinator has welcomed it. */
  private links: PeerLinks | null = null;
  /** The peer address given or bound (null with a wildcard listen and no --advertise: see peerAddress()). */
  private advertised: string | null = null;
  private peerPort = 0;
  private member: NetMember | null = null;
  private welcome: Welcome | null = null;

  constructor(private readonly opts: NetWorkerOptions) {}

  /** Where the worker stands now (asked on every /readyz). */
  state(): WorkerState {
    // Stopped, refused for good, or told the run is finished: on its way out, whatever the connection does.
    return this.stopping || this.exitCode !== null ? 'leaving' : this.current;
  }

  /**
   * Runs until the run is finished or stop() (resolves 0); throws a
   * DptrainError when refused for good, unable to take part, or when no
   * coordinator welcomed it within giveUpAfterMs.
   */
  async run(): Promise<number> {
    const url = this.opts.url.href;
    const reconnect = new Reconnector({
      url, backoff: this.opts.backoffMs ?? { first: 500, max: 10_000 },
      giveUpAfterMs: this.opts.giveUpAfterMs ?? GIVE_UP_AFTER_MS, giveUpHint: 'or wait longer (--give-up-after SECONDS)', now: () => performance.now(),
    });
    try {
      if (this.opts.peer !== undefined) await this.startPeers(this.opts.peer);
      while (this.exitCode === null) {
        this.lastError = null;
        const end = await this.connect();
        if (this.stopping) { this.exitCode ??= 0; break; }
        if (end.kind === 'finished') { this.exitCode = 0; break; }
        if (end.kind === 'refused') throw dptError('DPT_ERR_REFUSED', `the coordinator at ${url} refused this worker: ${end.reason}`);
        if (end.kind === 'failed') throw dptError(end.code ?? 'DPT_ERR_WORKER', `cannot take part in the run at ${url}: ${end.reason}`);
        const next = reconnect.next(end.welcomed, this.lastError ?? 'the connection closed');
        if (next.kind === 'give-up') throw dptError('DPT_ERR_CONNECT', next.message);
        this.opts.log(next.line);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, next.delayMs);
          this.wake = () => { clearTimeout(t); resolve(); };
        });
        this.wake = null;
      }
      return this.exitCode;
    } finally {
      this.exitCode ??= 1;
      await this.held?.compute.close();
      await this.links?.close();
    }
  }

  /** The peer port: links to and from the other members of the collective. */
  private async startPeers(peer: NonNullable<NetWorkerOptions['peer']>): Promise<void> {
    const links = await PeerLinks.start({
      listen: peer.listen, token: this.opts.token,
      ...(peer.tls === undefined ? {} : { tls: { ...peer.tls, ...(this.opts.tlsCa === undefined ? {} : { ca: this.opts.tlsCa }) } }),
      identity: () => (this.welcome === null ? null : { memberId: this.welcome.workerId, runId: this.welcome.runId }),
      limits: () => {
        // A part: at most 2 ceil(log2 K) + 1 blocks of a slice; K is at most the batch's rows.
        const g = this.held?.compute.gradLen ?? 0;
        const blocks = 2 * treeHeight(Math.max(1, this.welcome?.session.maxBatch ?? 1)) + 1;
        return { maxFrameBytes: blocks * g * 4 + (64 << 10), maxPayloadFloats: { part: blocks * g, reduced: g } };
      },
      onMessage: (from, m) => (this.member === null ? 'this worker is not a member of the collective now' : this.member.fromPeer(from, m)),
      onBroken: (peer, reason) => this.member?.peerBroken(peer, reason),
      log: this.opts.log,
    });
    this.links = links;
    const wildcard = peer.listen.host === '0.0.0.0' || peer.listen.host === '::';
    this.peerPort = links.port;
    this.advertised = peer.advertise ?? (wildcard ? null : withPort(peer.listen.host, links.port));
    this.opts.log(`peers: listening on port ${links.port}${peer.tls === undefined ? '' : ' (TLS)'}, advertised as ` +
      (this.advertised ?? `the address this worker reaches the coordinator from, port ${links.port} (--advertise HOST:PORT behind NAT)`));
  }

  /**
   * Asks the worker to leave (a SIGTERM from a container engine): it says
   * bye at once, which hands the range it holds back to the coordinator
   * (reassigned, not counted as a failure), and exits 0.
   */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    const task = this.session?.taskInProgress() ?? null;
    this.opts.log(`stopping: ${reason}${task === null ? '' : ` (handing back task ${task})`}`);
    this.wake?.();
    this.session?.leave(reason);
    this.exitCode ??= 0;
  }

  /** One connection, until it closes: how it ended. */
  private connect(): Promise<SessionEnd> {
    const opts = this.opts;
    const { url, log } = opts;
    return new Promise<SessionEnd>((resolve) => {
      const ws = new WebSocket(url, {
        maxPayload: FROM_COORDINATOR_LIMITS.maxFrameBytes, perMessageDeflate: false, handshakeTimeout: 10_000,
        // A client must mask its frames; the mask keeps browsers from poisoning proxy caches, which a
        // worker process cannot do. An all-zero mask lets ws send a 0.4 MB answer without copying and
        // XOR-ing it (ws skips masking for a zero mask).
        generateMask: (mask: Buffer) => { mask.fill(0); },
        ...(this.opts.tlsCa === undefined ? {} : { ca: this.opts.tlsCa }),
      });
      const wire: Wire = {
        send: (frame) => ws.send(frame),
        close: (code, reason) => ws.close(code, reason),
        terminate: () => ws.terminate(),
        isOpen: () => ws.readyState === WebSocket.OPEN,
      };
      const peerAddress = (): string | null => {
        if (this.advertised !== null || this.peerPort === 0) return this.advertised;
        // A wildcard listen: the address this connection leaves from is the one the coordinator's
        // network reaches (a pod's IP, a container's on its compose network, the LAN interface).
        const local = (ws as unknown as { _socket?: { localAddress?: string } })._socket?.localAddress;
        return local === undefined ? null : withPort(local.replace(/^::ffff:/, ''), this.peerPort);
      };
      const session = new WorkerSession(wire, {
        get hello() {
          const address = peerAddress();
          return {
            token: opts.token, kind: 'process' as const, kernels: activeKernelKind(), threads: opts.threads, host: hostname().slice(0, 256),
            ...(opts.name === undefined ? {} : { name: opts.name }), software: opts.software,
            ...(address === null ? {} : { peer: { address } }),
          };
        },
        log,
        prepare: (w) => this.prepare(w, wire),
        setWeights: (version, params) => {
          if (this.held === null || params.length !== this.held.compute.size) {
            throw new Error(`weights of ${params.length} floats do not fit the session`);
          }
          this.held.compute.setWeights(version, params);
        },
        compute: (t) => this.compute(t),
        crash: (t) => {
          log(`chaos: crashing in the middle of task ${t.taskId}`);
          process.exit(70);
        },
        event: (e) => {
          if (e.type === 'welcomed') {
            this.current = 'preparing';
            this.welcome = e.welcome;
            this.member = null;
          }
          else if (e.type === 'ready') {
            this.current = 'ready';
            if (this.links !== null && this.held !== null) {
              this.member = new NetMember(e.welcome.workerId, e.welcome.session, this.held.compute, this.links, (m, frame) => session.sendMember(m, frame), log);
            }
          }
        },
        ...(this.links === null ? {} : { collective: (m) => this.member?.fromCoordinator(m) }),
      });
      this.session = session;
      ws.on('open', () => {
        log(`connected to ${url.href}`);
        session.opened();
      });
      ws.on('ping', () => session.heard());
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        session.frame(isBinary ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data.toString());
      });
      // Said once, with the reconnection line (run()).
      ws.on('error', (err) => { this.lastError = err.message; });
      ws.on('close', () => {
        this.session = null;
        this.member = null;
        this.welcome = null;
        // The next connection gives this worker another id: links opened under this one would name it wrongly.
        this.links?.reset();
        this.current = 'connecting';
        resolve(session.closed());
      });
    });
  }

  /** A welcome's session: the dataset, and what computes (kept across reconnects to the same run). */
  private async prepare(w: Welcome, _wire: Wire): Promise<void> {
    const key = `${w.configHash}/${w.dataset.hash}`;
    if (this.held?.key !== key) {
      await this.held?.compute.close();
      this.held = null;
      const train = await this.dataset(w);
      // One thread: compute on this one (no hand-off); more: a pool of threads under a local dispatcher.
      const compute = this.opts.threads === 1
        ? inlineCompute(w.session, train)
        : await threadedCompute(w.session, w.configHash, train, this.opts.threads, (line) => this.opts.log(line));
      this.held = { key, compute };
    }
    this.opts.log(`worker ${w.workerId} of run ${w.runId}: ready (${this.opts.threads} thread${this.opts.threads === 1 ? '' : 's'})`);
  }

  /** The training set: from --data (verified), the cache, or the coordinator (then cached). */
  private async dataset(w: Welcome): Promise<Dataset> {
    const { hash } = w.dataset;
    let blob: Uint8Array;
    if (this.opts.dataFile !== undefined) {
      blob = (await readBlob(this.opts.dataFile, hash)).blob;
      this.opts.log(`dataset ${hash.slice(0, 12)}: the local copy ${this.opts.dataFile}`);
    } else {
      const cached = await readCachedBlob(this.opts.cacheDir, hash).catch(() => undefined);
      if (cached !== undefined) {
        blob = cached.blob;
        this.opts.log(`dataset ${hash.slice(0, 12)}: from the cache (${cached.path})`);
      } else {
        const t0 = performance.now();
        blob = await download(httpUrl(this.opts.url, w.dataset.path), this.opts.token, w.dataset.bytes, this.opts.tlsCa);
        const got = sha256Node(blob);
        if (got !== hash) throw dptError('DPT_ERR_DATASET', `the downloaded dataset hashes to ${got}, expected ${hash}`);
        const stored = await writeBlob(this.opts.cacheDir, blob).catch((err: Error) => {
          this.opts.log(`could not cache the dataset in ${this.opts.cacheDir}: ${err.message}`);
          return null;
        });
        this.opts.log(`dataset ${hash.slice(0, 12)}: downloaded ${blob.length} bytes in ${Math.round(performance.now() - t0)} ms` +
          (stored === null ? '' : `, cached as ${stored.path}`));
      }
    }
    return decodeDataset(blob, { source: `dataset ${hash.slice(0, 12)}` });
  }

  private async compute(t: Task): Promise<Computed> {
    const c = this.held?.compute;
    if (c === undefined) throw new Error('no session');
    const blocks = alignedBlocks(t.k, t.start, t.end);
    const sums = this.sumsFor(blocks.length * c.gradLen);
    await c.compute(t, sums);
    return { blocks, sums };
  }

  /** n floats for a task's block sums; an abandoned task never writes them (its round is settled without combining). */
  private sumsFor(n: number): Float32Array {
    if (this.sums.length < n) this.sums = new Float32Array(n);
    return this.sums.subarray(0, n);
  }
}

/** GET url with the token, at most `bytes` bytes (a coordinator cannot make us buffer more than it announced). */
function download(url: URL, token: string, bytes: number, ca?: Buffer): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = get(url, {
      method: 'GET',
      headers: token === '' ? {} : { authorization: `Bearer ${token}` },
      ...(ca === undefined ? {} : { ca }),
    }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(dptError('DPT_ERR_DATASET', `GET ${url.pathname}: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trim()));
        return;
      }
      // 8-aligned, so x and y can be viewed in place.
      const blob = new Uint8Array(new ArrayBuffer(bytes));
      let at = 0;
      res.on('data', (chunk: Buffer) => {
        if (at + chunk.length > bytes) {
          req.destroy();
          reject(dptError('DPT_ERR_DATASET', `GET ${url.pathname}: more than the announced ${bytes} bytes`));
          return;
        }
        blob.set(chunk, at);
        at += chunk.length;
      });
      res.on('end', () => {
        if (at !== bytes) reject(dptError('DPT_ERR_DATASET', `GET ${url.pathname}: ${at} bytes, ${bytes} announced`));
        else resolve(blob);
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(dptError('DPT_ERR_DATASET', `GET ${url.href}: ${err.message}`)));
    req.end();
  });
}
