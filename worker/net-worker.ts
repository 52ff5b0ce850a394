// `dptrain worker --connect ws://HOST:PORT`: a worker process of a cluster.
//
// It connects (and reconnects, with exponential backoff and jitter, when the
// coordinator goes away or restarts), says hello, fetches the training set
// by content hash (or takes it from its disk cache or a local copy, verified
// by hash), builds the session's model and says ready. Then, per task: take
// the weights version, compute the range's aligned-block sums (on this
// thread, or cut across its own worker threads and reduced locally in the
// fixed tree order: range-compute.ts) and answer with one partial sum per
// aligned block.
//
// Exit codes: 0 when the run is finished (the coordinator said so) or the
// worker was asked to stop; 1 when it was refused for good (wrong token,
// protocol, kernels) or cannot use the session.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import { decodeDataset } from '../src/data/binary.js';
import type { Dataset } from '../src/data/dataset.js';
import { dptError } from '../src/errors.js';
import { decodeFromCoordinator, encode, FROM_COORDINATOR_LIMITS } from '../src/protocol/codec.js';
import { garbledFrame } from '../src/protocol/faults.js';
import { hashJson } from '../src/protocol/content-hash.js';
import {
  PROTOCOL_VERSION, type CoordinatorMessage, type Task, type Welcome, type WorkerMessage,
} from '../src/protocol/messages.js';
import { alignedBlocks } from '../src/reduce/tree.js';
import { activeKernelKind } from '../src/tensor/setup.js';
import { readBlob, readCachedBlob, sha256Node, writeBlob } from '../node/files/blobs.js';
import { httpUrl } from '../node/net/address.js';
import { inlineCompute, threadedCompute, type RangeCompute } from './range-compute.js';

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
  log: (line: string) => void;
  /** The version string of this program, for hello. */
  software: string;
}

/** What a worker holds for one session (model, loss, seed, dataset): kept across reconnects to the same run. */
interface Held {
  readonly key: string;
  readonly compute: RangeCompute;
}

export class NetWorker {
  private held: Held | null = null;
  private ws: WebSocket | null = null;
  private stopping = false;
  /** The answers' block sums, reused from task to task (the frame encoder copies them out). */
  private sums = new Float32Array(0);
  /** The task in progress: a newer task, a lost connection or stop() abandons it. */
  private task: { id: number; abort: AbortController; ws: WebSocket | null } | null = null;
  private exitCode: number | null = null;
  private tasksDone = 0;
  private attempt = 0;
  private wake: (() => void) | null = null;
  private readonly backoff: { first: number; max: number };
  private current: WorkerState = 'connecting';

  constructor(private readonly opts: NetWorkerOptions) {
    this.backoff = opts.backoffMs ?? { first: 250, max: 10_000 };
  }

  /** Where the worker stands now (asked on every /readyz). */
  state(): WorkerState {
    // Stopped, refused for good, or told the run is finished: on its way out, whatever the connection does.
    return this.stopping || this.exitCode !== null ? 'leaving' : this.current;
  }

  /** Runs until the run is finished, the worker is refused for good, or stop(); resolves with the exit code. */
  async run(): Promise<number> {
    while (this.exitCode === null) {
      const welcomed = await this.session();
      if (this.exitCode !== null) break;
      if (this.stopping) { this.exitCode = 0; break; }
      if (welcomed) this.attempt = 0;
      // Exponential backoff with full jitter: a restarted coordinator is not hit by every worker at once.
      const delay = Math.random() * Math.min(this.backoff.max, this.backoff.first * 2 ** this.attempt++);
      this.opts.log(`reconnecting in ${Math.round(delay)} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.wake = () => { clearTimeout(t); resolve(); };
      });
      this.wake = null;
    }
    await this.held?.compute.close();
    return this.exitCode;
  }

  /**
   * Asks the worker to leave (a SIGTERM from a container engine): it says
   * bye at once, which hands the range it holds back to the coordinator
   * (reassigned, not counted as a failure), and exits 0.
   */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.opts.log(`stopping: ${reason}${this.task === null ? '' : ` (handing back task ${this.task.id})`}`);
    this.task?.abort.abort();
    this.wake?.();
    this.leave(reason);
  }

  private leave(reason: string): void {
    const ws = this.ws;
    if (ws !== null && ws.readyState === WebSocket.OPEN) {
      this.send({ type: 'bye', code: 'leaving', reason });
      ws.close(1000, 'leaving');
    }
    this.exitCode ??= 0;
  }

  private send(message: WorkerMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encode(message));
  }

  /** One connection, until it closes. Resolves whether the coordinator welcomed us. */
  private session(): Promise<boolean> {
    const { url, log } = this.opts;
    return new Promise<boolean>((resolve) => {
      let welcomed = false;
      let heartbeat: NodeJS.Timeout | null = null;
      let lastPing = performance.now();
      let deadAfterMs = 15_000;
      const ws = new WebSocket(url, {
        maxPayload: FROM_COORDINATOR_LIMITS.maxFrameBytes, perMessageDeflate: false, handshakeTimeout: 10_000,
        // A client must mask its frames; the mask keeps browsers from poisoning proxy caches, which a
        // worker process cannot do. An all-zero mask lets ws send a 0.4 MB answer without copying and
        // XOR-ing it (ws skips masking for a zero mask).
        generateMask: (mask: Buffer) => { mask.fill(0); },
        ...(this.opts.tlsCa === undefined ? {} : { ca: this.opts.tlsCa }),
      });
      this.ws = ws;
      ws.on('open', () => {
        log(`connected to ${url.href}`);
        this.send({
          type: 'hello', protocol: PROTOCOL_VERSION, token: this.opts.token, kind: 'process',
          kernels: activeKernelKind(), threads: this.opts.threads, host: hostname().slice(0, 256),
          ...(this.opts.name === undefined ? {} : { name: this.opts.name }), software: this.opts.software,
        });
      });
      ws.on('ping', () => { lastPing = performance.now(); });
      ws.on('message', (data: Buffer, isBinary: boolean) => {
        lastPing = performance.now();
        if (!isBinary) { log('the coordinator sent a text frame; closing'); ws.terminate(); return; }
        let msg: CoordinatorMessage;
        try {
          msg = decodeFromCoordinator(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), FROM_COORDINATOR_LIMITS);
        } catch (err) {
          log(`closing: ${(err as Error).message}`);
          ws.terminate();
          return;
        }
        switch (msg.type) {
          case 'welcome':
            welcomed = true;
            this.current = 'preparing';
            deadAfterMs = msg.heartbeatMs * 15;
            heartbeat = setInterval(() => {
              if (performance.now() - lastPing > deadAfterMs) {
                log(`the coordinator has been silent for ${Math.round(performance.now() - lastPing)} ms; reconnecting`);
                ws.terminate();
                return;
              }
              this.send({ type: 'heartbeat', tasksDone: this.tasksDone, busy: this.task !== null });
            }, msg.heartbeatMs);
            void this.onWelcome(msg).catch((err: Error) => {
              log(`cannot take part: ${err.message}`);
              this.exitCode = 1;
              ws.close(1000, 'cannot take part');
            });
            return;
          case 'refuse':
            log(`refused: ${msg.reason}`);
            if (!msg.retry) this.exitCode = msg.code === 'finished' ? 0 : 1;
            return;
          case 'weights':
            if (this.held === null || msg.params.length !== this.held.compute.size) {
              log(`closing: weights of ${msg.params.length} floats do not fit the session`);
              ws.terminate();
              return;
            }
            this.held.compute.setWeights(msg.version, msg.params);
            return;
          case 'task':
            void this.onTask(msg);
            return;
          case 'bye':
            log(`the coordinator says bye: ${msg.reason}`);
            if (msg.code === 'finished') this.exitCode = 0;
            return;
        }
      });
      ws.on('error', (err) => log(`connection error: ${err.message}`));
      ws.on('close', () => {
        if (heartbeat !== null) clearInterval(heartbeat);
        this.ws = null;
        this.current = 'connecting';
        // Whatever this connection asked for is reassigned by now: drop it.
        this.task?.abort.abort();
        this.task = null;
        if (this.stopping) this.exitCode ??= 0;
        resolve(welcomed);
      });
    });
  }

  private async onWelcome(w: Welcome): Promise<void> {
    const welcoming = this.ws; // called as the welcome arrives: the connection it came on
    const configHash = hashJson(w.session);
    if (configHash !== w.configHash) throw dptError('DPT_ERR_MESSAGE', `the session hashes to ${configHash.slice(0, 12)}, the coordinator says ${w.configHash.slice(0, 12)}`);
    const key = `${configHash}/${w.dataset.hash}`;
    if (this.held?.key !== key) {
      await this.held?.compute.close();
      this.held = null;
      const train = await this.dataset(w);
      // One thread: compute on this one (no hand-off); more: a pool of threads under a local dispatcher.
      const compute = this.opts.threads === 1
        ? inlineCompute(w.session, train)
        : await threadedCompute(w.session, configHash, train, this.opts.threads, (line) => this.opts.log(line));
      this.held = { key, compute };
    }
    this.opts.log(`worker ${w.workerId} of run ${w.runId}: ready (${this.opts.threads} thread${this.opts.threads === 1 ? '' : 's'})`);
    this.send({ type: 'ready', configHash, datasetHash: w.dataset.hash });
    // Only if that connection still stands: it may have closed while the dataset came.
    if (this.ws === welcoming && welcoming?.readyState === WebSocket.OPEN) this.current = 'ready';
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

  private async onTask(t: Task): Promise<void> {
    const c = this.held?.compute ?? null;
    if (c === null) { this.send({ type: 'failed', taskId: t.taskId, reason: 'no session' }); return; }
    if (c.version !== t.version) {
      this.send({ type: 'failed', taskId: t.taskId, reason: `no weights for version ${t.version} (holds ${c.version})` });
      return;
    }
    // The coordinator sends a task only to an idle worker: one still running here was given up on there.
    this.task?.abort.abort();
    const mine = { id: t.taskId, abort: new AbortController(), ws: this.ws };
    this.task = mine;
    const t0 = performance.now();
    try {
      if (t.fault?.kind === 'stall') {
        this.opts.log(`chaos: stalling task ${t.taskId} for ${t.fault.ms ?? 0} ms`);
        await delay(t.fault.ms ?? 0, mine.abort.signal);
        if (mine.abort.signal.aborted) return;
      }
      const blocks = alignedBlocks(t.k, t.start, t.end);
      const sums = this.sumsFor(blocks.length * c.gradLen);
      await c.compute(t, sums);
      if (mine.abort.signal.aborted || this.ws !== mine.ws) return;
      if (this.carryOutFault(t, sums)) return;
      this.send({
        type: 'result', taskId: t.taskId, version: t.version, computeMs: performance.now() - t0,
        blocks: blocks.map((b) => ({ level: b.level, index: b.index })), sums,
      });
      this.tasksDone++;
    } catch (err) {
      if (!mine.abort.signal.aborted && this.ws === mine.ws) this.send({ type: 'failed', taskId: t.taskId, reason: (err as Error).message.slice(0, 1000) });
    } finally {
      if (this.task === mine) this.task = null;
    }
  }

  /** n floats for a task's block sums; an abandoned task never writes them (its round is settled without combining). */
  private sumsFor(n: number): Float32Array {
    if (this.sums.length < n) this.sums = new Float32Array(n);
    return this.sums.subarray(0, n);
  }

  /** `--chaos` orders (tests and demonstrations). Returns true when the answer is not to be sent normally. */
  private carryOutFault(t: Task, sums: Float32Array): boolean {
    switch (t.fault?.kind) {
      case 'crash':
        this.opts.log(`chaos: crashing in the middle of task ${t.taskId}`);
        process.exit(70);
      // eslint-disable-next-line no-fallthrough
      case 'disconnect':
        this.opts.log(`chaos: disconnecting in the middle of task ${t.taskId}`);
        this.ws?.terminate();
        return true;
      case 'throw':
        throw new Error(`chaos: task ${t.taskId} throws in the middle of its range`);
      case 'garble':
        this.ws?.send(garbledFrame(t.taskId));
        return true;
      case 'corrupt':
        sums[t.fault.index ?? 0] += 1;
        return false;
      default:
        return false;
    }
  }
}

/** Resolves after ms, or as soon as the signal aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
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
