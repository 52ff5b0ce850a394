// The live dashboard (`/`): listens to /live (server-sent events: a
// snapshot, then updates, see coordinator/live/status-types.ts) and keeps
// the page in step: the progress figures, the two curves (charts.ts), the
// workers table, the evaluations (the lines of metrics.jsonl), the run's
// config and the coordinator's events. Read-only: it sends nothing but its
// viewer token, to sign in (viewer-session.ts), when the link carried one.
//
// Numbers the tests compare with metrics.jsonl are also in data-value
// attributes, unrounded.
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';
import type { EvalPoint, LiveEvent, LiveMessage, LossPoint, RunInfo, RunProgress, ViewerWorker } from '../live/status-types.js';
import { createCharts } from './charts.js';
import { workerKindsText } from './words.js';
import { forgetViewerToken, signIn, viewerToken } from './viewer-session.js';

function byId(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`the page lacks #${id}`);
  return el;
}

function setText(id: string, text: string, value?: number | string | null): void {
  const el = byId(id);
  el.textContent = text;
  if (value !== undefined) el.dataset.value = value === null ? '' : String(value);
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function clock(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

const whole = (n: number) => Math.round(n).toLocaleString('en');
const percent = (x: number | null) => (x === null ? '–' : `${(100 * x).toFixed(2)}%`);

function cell(row: HTMLTableRowElement, text: string, opts: { num?: boolean; cls?: string; value?: number | null; title?: string } = {}): HTMLTableCellElement {
  const td = row.insertCell();
  td.textContent = text;
  const classes = [opts.num === true ? 'num' : '', opts.cls ?? ''].filter((c) => c !== '');
  if (classes.length > 0) td.className = classes.join(' ');
  if (opts.value !== undefined) td.dataset.value = opts.value === null ? '' : String(opts.value);
  if (opts.title !== undefined) td.title = opts.title;
  return td;
}

function fillBody(tableId: string, rows: number, fill: (row: HTMLTableRowElement, i: number) => void): void {
  const body = (byId(tableId) as HTMLTableElement).tBodies[0];
  if (rows === 0) return; // keep the placeholder row
  body.replaceChildren();
  for (let i = 0; i < rows; i++) fill(body.insertRow(), i);
}

const PHASE_LABEL: Record<string, string> = {
  starting: 'starting', 'waiting-for-workers': 'waiting for workers', training: 'training',
  finishing: 'finishing', done: 'done', failed: 'failed', offline: 'coordinator offline',
};

class Dashboard {
  private losses: LossPoint[] = [];
  private evals: EvalPoint[] = [];
  private events: LiveEvent[] = [];
  private phase = 'starting';
  private readonly charts = createCharts(byId('loss-chart'), byId('accuracy-chart'));

  apply(m: LiveMessage): void {
    if (m.type === 'snapshot') {
      this.losses = m.losses;
      this.evals = m.evals;
      this.events = m.events;
      this.showInfo(m.info);
    } else {
      this.losses.push(...m.losses);
      this.evals.push(...m.evals);
      this.events.push(...m.events);
      this.events.splice(0, Math.max(0, this.events.length - 200));
    }
    this.showProgress(m.progress);
    this.showWorkers(m.workers);
    if (m.type === 'snapshot' || m.losses.length > 0 || m.evals.length > 0) this.charts.update(this.losses, this.evals);
    if (m.type === 'snapshot' || m.evals.length > 0) this.showEvals();
    if (m.type === 'snapshot' || m.events.length > 0) this.showEvents();
  }

  offline(text = 'Lost the connection to the coordinator; retrying…'): void {
    if (this.phase === 'done' || this.phase === 'failed') return;
    this.setPhase('offline');
    const banner = byId('banner');
    banner.hidden = false;
    banner.textContent = text;
  }

  online(): void {
    byId('banner').hidden = true;
  }

  private setPhase(phase: string): void {
    this.phase = phase;
    const pill = byId('phase');
    pill.textContent = PHASE_LABEL[phase] ?? phase;
    pill.dataset.phase = phase;
  }

  private showInfo(info: RunInfo): void {
    setText('run-name', info.name);
    setText('run-description', info.description ?? '');
    document.title = `${info.name} · dptrain`;
    setText('epochs', String(info.epochs));
    setText('verify-sub', info.verifyFraction > 0 ? `verify fraction ${info.verifyFraction}` : 'verification off');
    const dl = byId('config');
    dl.replaceChildren();
    const item = (k: string, v: string, cls?: string) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      if (cls !== undefined) dd.className = cls;
      dl.append(dt, dd);
    };
    item('model', info.layers.join(' → '), 'layers');
    item('parameters', whole(info.params));
    item('loss', info.loss);
    item('optimizer', info.optimizer);
    item('batch', `${info.batchSize} samples in ${info.microShards} micro-shards`);
    item('epochs', String(info.epochs));
    item('seed', String(info.seed));
    item('kernels', info.kernels === 'wasm' ? 'WebAssembly SIMD' : 'TypeScript');
    item('checking', info.verifyFraction > 0 ? `${info.verifyFraction * 100}% of untrusted ranges recomputed` : 'off');
    setText('join-token', info.tokenRequired ? ' (the link needs #token=… from the organizer)' : '');
  }

  private showProgress(p: RunProgress): void {
    this.setPhase(p.phase);
    setText('step', whole(p.step), p.step);
    setText('last-step', p.lastStep > 0 ? whole(p.lastStep) : '–');
    byId('bar-fill').style.width = `${p.lastStep > 0 ? (100 * p.step) / p.lastStep : 0}%`;
    setText('epoch', String(p.epoch));
    setText('loss', p.loss === null ? '–' : p.loss.toFixed(4), p.loss);
    setText('samples-per-sec', p.samplesPerSec > 0 ? whole(p.samplesPerSec) : '–');
    setText('steps-per-sec', p.stepsPerSec > 0 ? p.stepsPerSec.toFixed(1) : '–');
    setText('elapsed', clock(p.elapsedSec));
    setText('eta', p.phase === 'done' ? 'done' : clock(p.etaSec));
    const s = p.stats;
    setText('verified', whole(s.verified), s.verified);
    const notes = [
      s.disputes > 0 ? `${s.disputes} disputed` : '', s.quarantined > 0 ? `${s.quarantined} quarantined` : '',
      s.speculated > 0 ? `${s.speculated} stragglers` : '', s.reassigned > 0 ? `${s.reassigned} reassigned` : '',
    ].filter((x) => x !== '');
    if (notes.length > 0) setText('verify-sub', notes.join(', '));
    const last = this.evals.at(-1);
    setText('accuracy', last === undefined ? '–' : percent(last.accuracy), last?.accuracy ?? null);
    setText('accuracy-sub', last === undefined ? 'after the first epoch' : `after epoch ${last.epoch}`);
  }

  private showWorkers(workers: ViewerWorker[]): void {
    const live = workers.filter((w) => w.state === 'idle' || w.state === 'busy');
    setText('workers-live', String(live.length), live.length);
    setText('workers-kinds', workerKindsText(live));
    // Live workers first, then the ones that left; each group in the order they joined.
    const order = [...live, ...workers.filter((w) => !live.includes(w))];
    fillBody('workers', order.length, (row, i) => {
      const w = order[i];
      row.className = w.state;
      row.dataset.worker = w.id;
      cell(row, w.name === undefined ? w.id : `${w.id} “${w.name}”`);
      const kind = row.insertCell();
      const badge = document.createElement('span');
      badge.className = `kind ${w.kind}`;
      badge.textContent = w.kind;
      kind.append(badge);
      cell(row, w.runsIn, { cls: 'host' });
      cell(row, String(w.threads), { num: true });
      cell(row, w.samplesPerSec > 0 ? whole(w.samplesPerSec) : '–', { num: true, value: w.samplesPerSec });
      cell(row, whole(w.microShards), { num: true, value: w.microShards });
      cell(row, whole(w.verified), { num: true, value: w.verified });
      cell(row, String(w.faults), { num: true, value: w.faults });
      cell(row, w.state, { cls: `state ${w.state}` });
    });
  }

  private showEvals(): void {
    const evals = this.evals;
    fillBody('evals', evals.length, (row, i) => {
      const e = evals[evals.length - 1 - i]; // newest first
      row.dataset.epoch = String(e.epoch);
      cell(row, String(e.epoch), { num: true, value: e.epoch });
      cell(row, whole(e.step), { num: true, value: e.step });
      cell(row, e.trainLoss.toFixed(4), { num: true, value: e.trainLoss });
      cell(row, e.testLoss.toFixed(4), { num: true, value: e.testLoss });
      cell(row, percent(e.accuracy), { num: true, value: e.accuracy });
      cell(row, e.f1Macro === null ? '–' : e.f1Macro.toFixed(4), { num: true, value: e.f1Macro });
    });
  }

  private showEvents(): void {
    const ol = byId('events');
    ol.replaceChildren();
    for (const e of [...this.events].reverse().slice(0, 100)) {
      const li = document.createElement('li');
      if (/quarantin|dropping|refused|disagree|failed|stalled/.test(e.line)) li.className = 'bad';
      const time = document.createElement('time');
      time.textContent = clock(e.t);
      const text = document.createElement('span');
      text.textContent = e.line;
      li.append(time, text);
      ol.append(li);
    }
  }
}

/** The session cookie lives 15 minutes (viewer-access.ts): renewed well before. */
const RENEW_MS = 5 * 60_000;
/** Before opening the feed again after the server refused it (401 once the cookie ran out, 429, 503). */
const REOPEN_MS = 3000;

const dashboard = new Dashboard();
let token = viewerToken();
// A link pasted into this very tab changes the fragment only (no new page load): its token is the one to use.
window.addEventListener('hashchange', () => { token = viewerToken(); });

/**
 * Signs in (when this tab holds a viewer token) and opens /live. EventSource
 * reconnects by itself after a network error, not after an HTTP refusal:
 * then the feed is closed and this starts over.
 */
async function openFeed(): Promise<void> {
  if (token !== '') {
    const outcome = await signIn(token);
    if (outcome === 'refused') {
      forgetViewerToken();
      dashboard.offline('The coordinator no longer accepts this viewer link (restarted with another viewer token?): ask the organizer for the current one.');
      return;
    }
  }
  const feed = new EventSource('/live');
  const onMessage = (e: MessageEvent<string>) => {
    dashboard.online();
    dashboard.apply(JSON.parse(e.data) as LiveMessage);
  };
  feed.addEventListener('snapshot', onMessage);
  feed.addEventListener('update', onMessage);
  feed.addEventListener('error', () => {
    dashboard.offline();
    if (feed.readyState === EventSource.CLOSED) setTimeout(() => void reopen(), REOPEN_MS);
  });
}

/** After a refusal: a tab with no token of its own whose cookie ran out goes to the sign-in page (a reload gets it). */
async function reopen(): Promise<void> {
  if (token === '') {
    const probe = await fetch('/live', { method: 'HEAD', cache: 'no-store' }).catch(() => null);
    if (probe?.status === 401) {
      location.reload();
      return;
    }
  }
  await openFeed();
}

setInterval(() => { if (token !== '') void signIn(token); }, RENEW_MS);
void openFeed();
