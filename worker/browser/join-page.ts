// The volunteer page, /join: one click makes this tab a worker. The page's
// main thread only shows progress; the work happens in tab-worker.ts (the
// connection) and compute-worker.ts (the kernels).
//
// The token travels in the link's fragment (/join#token=...), which a
// browser never sends to any server; the page moves it to sessionStorage
// and out of the address bar (link-secret.ts). A reload of a tab that had joined joins again
// by itself (sessionStorage keeps both for this tab only).
import { browserName } from './browser-name.js';
import { secretFromLink } from './link-secret.js';
import type { PageToTab, TabStatus, TabToPage, TestHooks } from './tab-messages.js';

const TOKEN_KEY = 'dptrain.token';
const JOINED_KEY = 'dptrain.joined';
const MAX_LOG_LINES = 200;

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page lacks #${id}`);
  return el;
}

const STATE_LABEL: Record<TabStatus['state'], string> = {
  starting: 'starting', connecting: 'connecting', downloading: 'fetching the training set', preparing: 'preparing',
  working: 'working', waiting: 'connected', reconnecting: 'reconnecting', finished: 'the run is finished',
  refused: 'refused', quarantined: 'quarantined', left: 'left', error: 'error',
};

function show(s: TabStatus): void {
  const state = byId('state');
  state.textContent = STATE_LABEL[s.state];
  state.dataset.state = s.state;
  byId('detail').textContent = s.detail;
  byId('worker-id').textContent = s.workerId ?? '–';
  const shards = byId('micro-shards');
  shards.textContent = s.microShards.toLocaleString('en');
  shards.dataset.value = String(s.microShards);
  const tasks = byId('tasks');
  tasks.textContent = s.tasks.toLocaleString('en');
  tasks.dataset.value = String(s.tasks);
  byId('samples-per-sec').textContent = s.samplesPerSec > 0 ? Math.round(s.samplesPerSec).toLocaleString('en') : '–';
  const ds = byId('dataset');
  ds.textContent = s.dataset === null ? '–' : s.dataset.source === 'cache' ? 'kept here' : `${(s.dataset.bytes / (1 << 20)).toFixed(1)} MiB fetched`;
  ds.dataset.source = s.dataset?.source ?? '';
  const over = s.state === 'finished' || s.state === 'refused' || s.state === 'quarantined' || s.state === 'error' || s.state === 'left';
  if (over) {
    sessionStorage.removeItem(JOINED_KEY);
    byId('leave').hidden = true;
  }
  if (s.state === 'left' && worker !== null) {
    // The tab worker said bye: a new Join starts afresh.
    worker.terminate();
    worker = null;
    (byId('join') as HTMLButtonElement).disabled = false;
  }
}

function appendLog(line: string): void {
  const pre = byId('log');
  const lines = (pre.textContent ?? '').split('\n').filter((l) => l !== '');
  lines.push(`${new Date().toLocaleTimeString()} ${line}`);
  pre.textContent = lines.slice(-MAX_LOG_LINES).join('\n') + '\n';
}

let worker: Worker | null = null;

function join(token: string): void {
  if (worker !== null) return;
  const kernels = document.body.dataset.kernels === 'ts' ? 'ts' : 'wasm';
  const hooks = (globalThis as { __dptrainTestHooks?: TestHooks }).__dptrainTestHooks ?? {};
  worker = new Worker('/static/tab-worker.js', { type: 'module' });
  worker.addEventListener('message', (e: MessageEvent<TabToPage>) => {
    if (e.data.type === 'log') appendLog(e.data.line);
    else show(e.data);
  });
  worker.addEventListener('error', (e) => appendLog(`the tab worker failed: ${e.message}`));
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const start: PageToTab = { type: 'start', wsUrl, token, kernels, hooks };
  worker.postMessage(start);
  sessionStorage.setItem(JOINED_KEY, '1');
  (byId('join') as HTMLButtonElement).disabled = true;
  byId('leave').hidden = false;
}

function leave(): void {
  const leaving: PageToTab = { type: 'leave' };
  worker?.postMessage(leaving);
  sessionStorage.removeItem(JOINED_KEY);
  byId('leave').hidden = true;
}

// What the tab will tell the coordinator about this browser, word for word.
byId('browser-name').textContent = browserName(navigator);
const token = secretFromLink('token', TOKEN_KEY);
byId('join').addEventListener('click', () => join(token));
byId('leave').addEventListener('click', leave);
if (sessionStorage.getItem(JOINED_KEY) === '1') join(token);
