// A volunteer tab's connection to the coordinator: a dedicated Web Worker
// that speaks the very protocol of `dptrain worker` (src/protocol, hello
// with kind 'tab'), the sibling of worker/net-worker.ts. Per connection:
//
//   1. hello {kind: 'tab', token, kernels}  ->  welcome | refuse
//   2. the session's hash is checked; the training set comes from IndexedDB
//      or /data/<hash> (dataset-store.ts), and goes to the compute worker
//      with the model; then ready
//   3. weights -> the compute worker; task -> the compute worker -> result
//      (or failed); a heartbeat every welcome.heartbeatMs, from this worker,
//      whose timers keep running while the tab is hidden
//   4. bye 'finished': done; anything else (a restart, a lost connection):
//      reconnect with backoff and jitter, keeping the dataset and the model.
//      Refused for good (token, kernels, quarantined): stop and say why.
//
// Closing or reloading the tab closes the socket; the coordinator hands the
// range it held to another worker. Nothing is lost.
import * as z from 'zod';
import { decodeFromCoordinator, encode, FROM_COORDINATOR_LIMITS } from '../../src/protocol/codec.js';
import { garbledFrame } from '../../src/protocol/faults.js';
import { hashJson } from '../../src/protocol/content-hash.js';
import { PROTOCOL_VERSION, type CoordinatorMessage, type Task, type Welcome, type WorkerMessage } from '../../src/protocol/messages.js';
import { loadDataset } from './dataset-store.js';
import type { ComputeToTab, PageToTab, TabState, TabStatus, TabToCompute, TabToPage, TestHooks } from './tab-messages.js';

z.config({ jitless: true });

interface Scope {
  postMessage(message: TabToPage): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<PageToTab>) => void): void;
  navigator: { userAgent: string; platform: string };
}
const scope = self as unknown as Scope;

const BACKOFF = { first: 500, max: 15_000 };

let options: { wsUrl: string; token: string; kernels: 'wasm' | 'ts'; hooks: TestHooks } | null = null;
let ws: WebSocket | null = null;
let stopped = false;
let attempt = 0;
let heartbeat: ReturnType<typeof setInterval> | null = null;
const status: TabStatus = {
  type: 'status', state: 'starting', detail: 'starting', workerId: null, dataset: null, tasks: 0, microShards: 0, samplesPerSec: 0,
};
let computeMs = 0;
let samples = 0;

// ---- the compute worker

const compute = new Worker('/static/compute-worker.js', { type: 'module' });
/** The session key the compute worker holds (the same run after a reconnect: nothing to redo). */
let computeKey: string | null = null;
let weightsVersion = -1;
/** The task in progress on this connection; a new task, a closed socket or a stop abandons it. */
let current: { task: Task; socket: WebSocket; abort: AbortController } | null = null;
const waiting = new Map<string, (m: ComputeToTab) => void>();

compute.addEventListener('message', (e: MessageEvent<ComputeToTab>) => {
  const m = e.data;
  switch (m.type) {
    case 'initialized':
    case 'ready':
      waiting.get(m.type)?.(m);
      waiting.delete(m.type);
      return;
    case 'error':
      log(`compute: ${m.message}`);
      for (const [, resolve] of waiting) resolve(m);
      waiting.clear();
      return;
    case 'result':
    case 'failed':
      onComputed(m);
      return;
  }
});

function toCompute(m: TabToCompute, transfer: Transferable[] = []): void {
  compute.postMessage(m, transfer);
}

/** Sends m and waits for the compute worker's reply of type `reply` (or its error). */
function ask(m: TabToCompute, reply: 'initialized' | 'ready', transfer: Transferable[] = []): Promise<ComputeToTab> {
  return new Promise((resolve) => {
    waiting.set(reply, resolve);
    toCompute(m, transfer);
  });
}

// ---- the page

function log(line: string): void {
  scope.postMessage({ type: 'log', line });
}

function setState(state: TabState, detail: string): void {
  status.state = state;
  status.detail = detail;
  report();
}

function report(): void {
  status.samplesPerSec = computeMs > 0 ? (samples / computeMs) * 1000 : 0;
  scope.postMessage({ ...status });
}

/** "Chrome 131 on Linux x86_64": the host a tab gives in hello (the dashboard's workers table shows it). */
function browserName(): string {
  const ua = scope.navigator.userAgent;
  const m = /(Firefox|Edg|OPR|Chrome|Version)\/(\d+)/.exec(ua);
  const name = m === null ? 'a browser' : `${m[1] === 'Version' ? 'Safari' : m[1] === 'Edg' ? 'Edge' : m[1] === 'OPR' ? 'Opera' : m[1]} ${m[2]}`;
  return `${name} on ${scope.navigator.platform || 'unknown'}`.slice(0, 256);
}

// ---- the connection

function send(m: WorkerMessage, socket: WebSocket | null = ws): void {
  if (socket !== null && socket.readyState === WebSocket.OPEN) socket.send(encode(m));
}

function connect(): void {
  if (options === null || stopped) return;
  setState(attempt === 0 ? 'connecting' : 'reconnecting', `connecting to ${options.wsUrl}`);
  const socket = new WebSocket(options.wsUrl);
  socket.binaryType = 'arraybuffer';
  ws = socket;
  let welcomed = false;
  let finished = false;
  let refusedForGood = false;
  socket.onopen = () => {
    send({
      type: 'hello', protocol: PROTOCOL_VERSION, token: options!.token, kind: 'tab', kernels: options!.kernels,
      threads: 1, host: browserName(), software: `dptrain tab, ${scope.navigator.userAgent.slice(0, 200)}`,
    }, socket);
  };
  socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => {
    const m = decodeFrame(e.data);
    if (m === null) { socket.close(); return; }
    switch (m.type) {
      case 'welcome':
        welcomed = true;
        attempt = 0;
        status.workerId = m.workerId;
        if (heartbeat !== null) clearInterval(heartbeat);
        heartbeat = setInterval(() => send({ type: 'heartbeat', tasksDone: status.tasks, busy: current !== null }, socket), m.heartbeatMs);
        void prepare(m, socket).catch((err: Error) => {
          log(`cannot take part: ${err.message}`);
          refusedForGood = true;
          setState('error', `cannot take part: ${err.message}`);
          socket.close(1000, 'cannot take part');
        });
        return;
      case 'refuse':
        log(`refused: ${m.reason}`);
        if (!m.retry) {
          refusedForGood = true;
          setState(m.code === 'quarantined' ? 'quarantined' : 'refused', m.code === 'token'
            ? `refused: ${m.reason}. Ask the organizer for the whole link (it carries the token after #token=).`
            : `refused: ${m.reason}`);
        }
        return;
      case 'weights':
        // A copy goes to the compute worker: this isolate runs no kernels, so it may give the copy away.
        toCompute({ type: 'weights', version: m.version, params: m.params.slice() });
        weightsVersion = m.version;
        return;
      case 'task':
        onTask(m, socket);
        return;
      case 'bye':
        log(`the coordinator says bye: ${m.reason}`);
        if (m.code === 'finished') finished = true;
        if (m.code === 'kicked') setState('reconnecting', `disconnected by the coordinator: ${m.reason}`);
        return;
    }
  };
  socket.onclose = () => {
    if (ws === socket) ws = null;
    if (heartbeat !== null) clearInterval(heartbeat);
    heartbeat = null;
    current?.abort.abort();
    current = null;
    if (stopped) return;
    // The state already says "the run is finished"; the detail says what this tab gave.
    if (finished) { setState('finished', `thank you! This tab computed ${status.microShards.toLocaleString('en')} micro-shards.`); return; }
    if (refusedForGood) return;
    if (welcomed) attempt = 0;
    const delay = Math.random() * Math.min(BACKOFF.max, BACKOFF.first * 2 ** attempt++);
    if (status.state !== 'reconnecting') setState('reconnecting', 'the connection closed; reconnecting');
    log(`connection closed; reconnecting in ${Math.round(delay)} ms`);
    setTimeout(connect, delay);
  };
}

/** A frame from the coordinator, validated; null (said in the log) for anything else. */
function decodeFrame(data: ArrayBuffer | string): CoordinatorMessage | null {
  if (typeof data === 'string') { log('the coordinator sent a text frame; closing'); return null; }
  try {
    return decodeFromCoordinator(new Uint8Array(data), FROM_COORDINATOR_LIMITS);
  } catch (err) {
    log(`closing: ${(err as Error).message}`);
    return null;
  }
}

/** The session of a welcome: checked, its dataset and model in the compute worker; then ready. */
async function prepare(w: Welcome, socket: WebSocket): Promise<void> {
  const configHash = hashJson(w.session);
  if (configHash !== w.configHash) throw new Error(`the session hashes to ${configHash.slice(0, 12)}, the coordinator says ${w.configHash.slice(0, 12)}`);
  const key = `${configHash}/${w.dataset.hash}`;
  if (computeKey !== key) {
    setState('downloading', `fetching the training set (${formatBytes(w.dataset.bytes)})`);
    const ds = await loadDataset(w.dataset, options!.token, (received) => {
      status.detail = `downloading the training set: ${formatBytes(received)} of ${formatBytes(w.dataset.bytes)}`;
      report();
    }, log);
    status.dataset = { source: ds.source, bytes: ds.bytes };
    log(ds.source === 'cache'
      ? `dataset ${w.dataset.hash.slice(0, 12)}: from this browser's storage (nothing downloaded)`
      : `dataset ${w.dataset.hash.slice(0, 12)}: downloaded ${ds.bytes} bytes`);
    setState('preparing', 'building the model');
    const reply = await ask({ type: 'session', key, session: w.session, dataset: ds.blob }, 'ready', [ds.blob]);
    if (reply.type !== 'ready') throw new Error(reply.type === 'error' ? reply.message : 'the compute worker did not get ready');
    computeKey = key;
  }
  weightsVersion = -1; // a new connection: weights come again
  if (socket.readyState !== WebSocket.OPEN) return;
  send({ type: 'ready', configHash, datasetHash: w.dataset.hash }, socket);
  setState('waiting', `worker ${w.workerId}: ready, waiting for work`);
}

function onTask(t: Task, socket: WebSocket): void {
  // The coordinator gives a task only to an idle worker: one still running here was given up on there.
  current?.abort.abort();
  if (weightsVersion !== t.version) {
    send({ type: 'failed', taskId: t.taskId, reason: `no weights for version ${t.version} (holds ${weightsVersion})` }, socket);
    return;
  }
  const mine = { task: t, socket, abort: new AbortController() };
  current = mine;
  setState('working', `computing micro-shards ${t.start}-${t.end - 1} of step ${t.step + 1}`);
  const go = () => { if (!mine.abort.signal.aborted) toCompute({ type: 'task', task: t }); };
  if (t.fault?.kind === 'stall') {
    log(`chaos: stalling task ${t.taskId} for ${t.fault.ms ?? 0} ms`);
    const timer = setTimeout(go, t.fault.ms ?? 0);
    mine.abort.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  } else {
    go();
  }
}

function onComputed(m: Extract<ComputeToTab, { type: 'result' | 'failed' }>): void {
  const mine = current;
  if (mine === null || mine.task.taskId !== m.taskId || mine.abort.signal.aborted) return; // abandoned
  current = null;
  const t = mine.task;
  if (m.type === 'failed') {
    send({ type: 'failed', taskId: t.taskId, reason: m.reason }, mine.socket);
  } else if (!carryOutFault(t, mine.socket)) {
    // Wrong answers on purpose: a --chaos corrupt order, or the test hook of a lying tab.
    if (t.fault?.kind === 'corrupt') m.sums[t.fault.index ?? 0] += 1;
    const tamper = options?.hooks.tamper;
    if (tamper !== undefined) m.sums[0] += tamper;
    send({
      type: 'result', taskId: t.taskId, version: t.version, computeMs: m.computeMs,
      blocks: m.blocks.map((b) => ({ level: b.level, index: b.index })), sums: m.sums,
    }, mine.socket);
    status.tasks++;
    status.microShards += t.end - t.start;
    computeMs += m.computeMs;
    samples += m.samples;
  }
  setState(ws === null ? status.state : 'waiting', `worker ${status.workerId}: ${status.microShards} micro-shards done`);
}

/** `--chaos` orders that replace the answer (tests and demonstrations). Returns true when the answer is not to be sent. */
function carryOutFault(t: Task, socket: WebSocket): boolean {
  switch (t.fault?.kind) {
    case 'crash':
    case 'disconnect':
      log(`chaos: disconnecting in the middle of task ${t.taskId}`);
      socket.close();
      return true;
    case 'throw':
      send({ type: 'failed', taskId: t.taskId, reason: `chaos: task ${t.taskId} throws in the middle of its range` }, socket);
      return true;
    case 'garble':
      socket.send(garbledFrame(t.taskId));
      return true;
    default:
      return false;
  }
}

function formatBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${Math.ceil(n / 1024)} KiB`;
}

// ---- the page's orders

scope.addEventListener('message', (e) => {
  const m = e.data;
  if (m.type === 'start') {
    if (options !== null) return;
    options = { wsUrl: m.wsUrl, token: m.token, kernels: m.kernels, hooks: m.hooks };
    setState('starting', 'loading the WebAssembly kernels');
    void ask({ type: 'init', wasmUrl: '/static/kernels.wasm', kernels: m.kernels }, 'initialized').then((reply) => {
      if (reply.type !== 'initialized') { setState('error', `cannot load the kernels: ${reply.type === 'error' ? reply.message : reply.type}`); return; }
      log(`computing with the ${reply.kernels} kernels`);
      connect();
    });
  } else if (m.type === 'leave') {
    stopped = true;
    current?.abort.abort();
    send({ type: 'bye', code: 'leaving', reason: 'the volunteer left' });
    ws?.close(1000, 'leaving');
    setState('left', 'you left the run; thank you!');
  }
});
