// A volunteer tab's connection to the coordinator: a dedicated Web Worker
// that speaks the very protocol of `dptrain worker` (hello with kind 'tab')
// through the same session module (worker/session/session.ts: handshake,
// session check, heartbeats, a silent coordinator, chaos). What is its own:
// the browser's WebSocket; the training set from IndexedDB or /data/<hash>
// (dataset-store.ts); the compute worker that holds the model and the
// kernels (weights and tasks go to it, results come back); the page's
// status. A heartbeat goes out from this worker, whose timers keep running
// while the tab is hidden. bye 'finished': done; a restart or a lost
// connection: reconnect with backoff and jitter, keeping the dataset and
// the model; refused for good (token, kernels, quarantined): stop and say why.
//
// Closing or reloading the tab closes the socket; the coordinator hands the
// range it held to another worker. Nothing is lost.
import * as z from 'zod';
import type { Task, Welcome } from '../../src/protocol/messages.js';
import { GIVE_UP_AFTER_MS, Reconnector } from '../session/reconnect.js';
import { WorkerSession, type Computed, type SessionEnd, type SessionEvent, type Wire } from '../session/session.js';
import { browserName } from './browser-name.js';
import { loadDataset } from './dataset-store.js';
import type { ComputeToTab, PageToTab, TabState, TabStatus, TabToCompute, TabToPage, TestHooks } from './tab-messages.js';

z.config({ jitless: true });

interface Scope {
  postMessage(message: TabToPage): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<PageToTab>) => void): void;
  navigator: { userAgent: string; platform: string };
}
const scope = self as unknown as Scope;

let options: { wsUrl: string; token: string; kernels: 'wasm' | 'ts'; hooks: TestHooks } | null = null;
let session: WorkerSession | null = null;
let reconnect: Reconnector | null = null;
let stopped = false;
const status: TabStatus = {
  type: 'status', state: 'starting', detail: 'starting', workerId: null, dataset: null, tasks: 0, microShards: 0, samplesPerSec: 0,
};
let computeMs = 0;
let samples = 0;

// ---- the compute worker

const compute = new Worker('/static/compute-worker.js', { type: 'module' });
/** The session key the compute worker holds (the same run after a reconnect: nothing to redo). */
let computeKey: string | null = null;
const waiting = new Map<string, (m: ComputeToTab) => void>();
/** Tasks sent to the compute worker, by task id, until it answers. */
const computing = new Map<number, { resolve: (c: Computed & { samples: number }) => void; reject: (err: Error) => void }>();

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
    case 'failed': {
      const pending = computing.get(m.taskId);
      computing.delete(m.taskId);
      if (m.type === 'failed') pending?.reject(new Error(m.reason));
      else pending?.resolve({ blocks: m.blocks, sums: m.sums, computeMs: m.computeMs, samples: m.samples });
      return;
    }
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

// ---- the connection

function connect(): void {
  if (options === null || stopped) return;
  const o = options;
  setState(status.state === 'starting' ? 'connecting' : 'reconnecting', `connecting to ${o.wsUrl}`);
  const socket = new WebSocket(o.wsUrl);
  socket.binaryType = 'arraybuffer';
  const wire: Wire = {
    send: (frame) => socket.send(frame),
    close: (code, reason) => socket.close(code, reason),
    terminate: () => socket.close(),
    isOpen: () => socket.readyState === WebSocket.OPEN,
  };
  const s = new WorkerSession(wire, {
    hello: {
      token: o.token, kind: 'tab', kernels: o.kernels, threads: 1, host: browserName(scope.navigator),
      software: `dptrain tab, ${scope.navigator.userAgent.slice(0, 200)}`,
    },
    log,
    prepare,
    setWeights(version, params) {
      // A copy goes to the compute worker: this isolate runs no kernels, so it may give the copy away.
      toCompute({ type: 'weights', version, params: params.slice() });
    },
    compute: computeTask,
    crash(t, w) {
      log(`chaos: disconnecting in the middle of task ${t.taskId}`);
      w.close(1000, 'chaos');
    },
    event: onEvent,
  });
  session = s;
  socket.onopen = () => s.opened();
  socket.onmessage = (e: MessageEvent<ArrayBuffer | string>) => s.frame(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
  socket.onclose = () => {
    if (session === s) session = null;
    closed(s.closed());
  };
}

/** A connection ended: done, stopped for good, or reconnect after a backoff. */
function closed(end: SessionEnd): void {
  if (stopped) return;
  // The state already says "the run is finished"; the detail says what this tab gave.
  if (end.kind === 'finished') { setState('finished', `thank you! This tab computed ${status.microShards.toLocaleString('en')} micro-shards.`); return; }
  if (end.kind === 'failed') { setState('error', `cannot take part: ${end.reason}`); return; }
  if (end.kind === 'refused') {
    setState(end.code === 'quarantined' ? 'quarantined' : 'refused', end.code === 'token'
      ? `refused: ${end.reason}. Ask the organizer for the whole link (it carries the token after #token=).`
      : `refused: ${end.reason}`);
    return;
  }
  // A browser's WebSocket does not say why a connection failed.
  reconnect ??= new Reconnector({
    url: options!.wsUrl, backoff: { first: 500, max: 15_000 }, giveUpAfterMs: GIVE_UP_AFTER_MS, giveUpHint: 'then reload this page', now: () => performance.now(),
  });
  const next = reconnect.next(end.welcomed, 'the connection closed');
  if (next.kind === 'give-up') { setState('error', next.message); return; }
  if (status.state !== 'reconnecting') setState('reconnecting', 'the connection closed; reconnecting');
  log(next.line);
  setTimeout(connect, next.delayMs);
}

function onEvent(e: SessionEvent): void {
  switch (e.type) {
    case 'welcomed':
      status.workerId = e.welcome.workerId;
      return;
    case 'ready':
      setState('waiting', `worker ${e.welcome.workerId}: ready, waiting for work`);
      return;
    case 'task':
      setState('working', `computing micro-shards ${e.task.start}-${e.task.end - 1} of step ${e.task.step + 1}`);
      return;
    case 'answered':
      status.tasks++;
      status.microShards += e.task.end - e.task.start;
      setState(session === null ? status.state : 'waiting', `worker ${status.workerId}: ${status.microShards} micro-shards done`);
      return;
    case 'bye':
      if (e.code === 'kicked') setState('reconnecting', `disconnected by the coordinator: ${e.reason}`);
      return;
    case 'refused':
      return;
  }
}

/** The session of a welcome: its dataset and model in the compute worker (nothing to redo for the same run). */
async function prepare(w: Welcome, configHash: string): Promise<void> {
  const key = `${configHash}/${w.dataset.hash}`;
  if (computeKey === key) return;
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

/** A task on the compute worker; the test hook of a lying tab tampers with its answer. */
async function computeTask(t: Task): Promise<Computed> {
  const c = await new Promise<Computed & { samples: number }>((resolve, reject) => {
    computing.set(t.taskId, { resolve, reject });
    toCompute({ type: 'task', task: t });
  });
  computeMs += c.computeMs ?? 0;
  samples += c.samples;
  const tamper = options?.hooks.tamper;
  if (tamper !== undefined) c.sums[0] += tamper;
  return c;
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
    session?.leave('the volunteer left');
    setState('left', 'you left the run; thank you!');
  }
});
