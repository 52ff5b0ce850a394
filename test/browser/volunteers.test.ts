// Browser volunteers for real: a real coordinator process (`dptrain train
// --listen`), real headless Chromium tabs that open its /join page and
// press Join, real sockets. Every run must end with the weightsSha256 of
// `--workers 0`, whoever computed what: two tabs; a tab closed in the
// middle of a step; a thread, a `dptrain worker` process and a tab
// together; a tab that lies (a test hook of the page adds to its answers),
// caught by --verify-fraction 1 and quarantined. A tab that comes back to
// the same coordinator address downloads no dataset byte (counted by the
// coordinator). The dashboard is screenshotted mid-run, its curves and
// tables checked, and its numbers compared with metrics.jsonl.
//
// The tests wait on lines the processes print, page elements and the
// processes' exits; nothing races a sleep. Without Chromium the suite
// skips and says why (test/helpers/chromium.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, referenceHashes, ROOT as ROOT_DIR, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { findChromium, launchChromium, type LaunchedBrowser } from '../helpers/chromium.js';
import { killAll, startCoordinator, startWorker, summaryOf, type Coordinator } from '../helpers/procs.js';
import type { TestHooks } from '../../worker/browser/tab-messages.js';

const CHROMIUM = findChromium();
if (CHROMIUM.skipReason !== null) console.warn(`test/browser/volunteers.test.ts skipped: ${CHROMIUM.skipReason}`);

const TOKEN = 'volunteer-test-token';
const ENV = { DPTRAIN_TOKEN: TOKEN };
const dir = tempDir('dptrain-volunteers-');
/** 512 digits, 8 steps per epoch, 4 micro-shards per step. */
const CONFIG = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 3 }));
const MIXED = writeJson(dir, 'mixed.json', smallMlpConfig({ epochs: 2, microShards: 8 }));
const LONG = writeJson(dir, 'long.json', smallMlpConfig({ epochs: 4 }));
const refHash = referenceHashes(dir);
let runs = 0;

function out(): string {
  return join(dir, `run-${++runs}`);
}

function httpBase(c: Coordinator): string {
  return `http://127.0.0.1:${c.port}`;
}

describe.skipIf(CHROMIUM.skipReason !== null)('browser volunteers (real Chromium tabs, a real coordinator)', () => {
  let browser: LaunchedBrowser;
  /** Console messages about the Content-Security-Policy, from every page: there must be none. */
  const cspComplaints: string[] = [];

  beforeAll(async () => {
    await Promise.all([CONFIG, MIXED, LONG].map(refHash));
    browser = await launchChromium(CHROMIUM.path, { width: 1440, height: 1000 });
  }, 180_000);
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await browser?.close();
  });

  function watch(page: Page): void {
    page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) cspComplaints.push(m.text()); });
    page.on('pageerror', (e) => cspComplaints.push(`page error: ${e.message}`));
  }

  /** A new tab on the coordinator's /join page, with the token in the link, Join pressed. */
  async function joinTab(c: Coordinator, hooks?: TestHooks): Promise<Page> {
    const page = await browser.context.newPage();
    watch(page);
    if (hooks !== undefined) await page.addInitScript((h) => { (globalThis as { __dptrainTestHooks?: unknown }).__dptrainTestHooks = h; }, hooks);
    await page.goto(`${httpBase(c)}/join#token=${TOKEN}`);
    // The token left the address bar at once.
    expect(page.url()).toBe(`${httpBase(c)}/join`);
    await page.click('#join');
    return page;
  }

  function tabState(page: Page, state: string, timeout = 90_000): Promise<unknown> {
    return page.waitForFunction((s) => document.getElementById('state')?.dataset.state === s, state, { timeout });
  }

  function tabLog(page: Page, text: string, timeout = 90_000): Promise<unknown> {
    return page.waitForFunction((t) => (document.getElementById('log')?.textContent ?? '').includes(t), text, { timeout });
  }

  it('2 tabs join a coordinator with no thread of its own: the run ends with the --workers 0 weights', async () => {
    const c = await startCoordinator(['--json', '--config', CONFIG, '--out', out(), '--min-workers', '2'], ENV);
    const tabs = [await joinTab(c), await joinTab(c)];
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash(CONFIG));
    const stats = s.workerStats as { kind: string; host: string; microShards: number }[];
    expect(stats.map((w) => w.kind)).toEqual(['tab', 'tab']);
    for (const w of stats) {
      expect(w.microShards).toBeGreaterThan(0);
      expect(w.host).toMatch(/^Chrome \d+ on /);
    }
    for (const tab of tabs) {
      await tabState(tab, 'finished');
      const done = Number(await tab.getAttribute('#micro-shards', 'data-value'));
      expect(done).toBeGreaterThan(0);
      // The state says the run is finished; the detail does not say it again.
      expect(await tab.textContent('#state')).toBe('the run is finished');
      expect(await tab.textContent('#detail')).toBe(`thank you! This tab computed ${done.toLocaleString('en')} micro-shards.`);
      await tab.close();
    }
    expect(c.proc.out()).toMatch(/worker b\d \(Chrome \d+ on .*, 127\.0\.0\.1\) joined: 1 thread/);
  });

  it('a tab closed in the middle of a step: its range goes to the other tab, same weights', async () => {
    // Without a step timeout the stalled range waits for its tab: step 3 holds still until the test closes it.
    const c = await startCoordinator(['--json', '--config', CONFIG, '--out', out(), '--min-workers', '2',
      '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=3,ms=600000'], ENV);
    const tabs = [await joinTab(c), await joinTab(c)];
    const staller = await Promise.race(tabs.map((t) => tabLog(t, 'chaos: stalling task').then(() => t)));
    await staller.close();
    await c.proc.waitFor(/step 3: worker b\d .*left: connection closed.*; reassigning/);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash(CONFIG));
    const other = tabs.find((t) => t !== staller)!;
    await tabState(other, 'finished');
    await other.close();
  });

  it('the CNN example (Adam): 2 threads, 2 `dptrain worker` processes and a tab each give the --workers 0 weights', async () => {
    const cnn = join(ROOT_DIR, 'examples/mnist-cnn.json');
    const steps = ['--max-steps', '3'];
    const ref = await runCli(['train', '--json', '--quiet', '--config', cnn, '--out', out(), '--workers', '0', ...steps]);
    expect(ref.code, ref.stderr).toBe(0);
    const want = lastJson(ref.stdout).weightsSha256 as string;
    const threads = await runCli(['train', '--json', '--quiet', '--config', cnn, '--out', out(), '--workers', '2', ...steps]);
    expect(threads.code, threads.stderr).toBe(0);
    expect(lastJson(threads.stdout).weightsSha256).toBe(want);

    const processes = await startCoordinator(['--json', '--config', cnn, '--out', out(), '--workers', '0', '--min-workers', '2', ...steps], ENV);
    startWorker(processes.url, ['--cache', join(dir, 'cache'), '--threads', '1'], ENV);
    startWorker(processes.url, ['--cache', join(dir, 'cache'), '--threads', '1'], ENV);
    expect(await processes.proc.exited).toMatchObject({ code: 0 });
    const viaProcesses = summaryOf(processes.proc);
    expect(viaProcesses.weightsSha256).toBe(want);
    expect((viaProcesses.workerStats as { kind: string }[]).map((w) => w.kind)).toEqual(['process', 'process']);

    const tabRun = await startCoordinator(['--json', '--config', cnn, '--out', out(), '--workers', '0', '--min-workers', '1', ...steps], ENV);
    const tab = await joinTab(tabRun);
    expect(await tabRun.proc.exited).toMatchObject({ code: 0 });
    const viaTab = summaryOf(tabRun.proc);
    expect(viaTab.weightsSha256).toBe(want);
    expect((viaTab.workerStats as { kind: string }[]).map((w) => w.kind)).toEqual(['tab']);
    await tabState(tab, 'finished');
    await tab.close();
  });

  it('mixed: a thread of the coordinator, a `dptrain worker` process and a tab give the --workers 0 weights', async () => {
    const c = await startCoordinator(['--json', '--config', MIXED, '--out', out(), '--workers', '1', '--min-workers', '3'], ENV);
    startWorker(c.url, ['--cache', join(dir, 'cache')], ENV);
    const tab = await joinTab(c);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash(MIXED));
    const stats = s.workerStats as { kind: string; microShards: number }[];
    expect(stats.map((w) => w.kind).sort()).toEqual(['process', 'tab', 'thread']);
    for (const w of stats) expect(w.microShards, w.kind).toBeGreaterThan(0);
    await tabState(tab, 'finished');
    await tab.close();
  });

  it('a tab that returns tampered gradients is caught by --verify-fraction 1, quarantined, and the run ends with the honest weights', async () => {
    const c = await startCoordinator(['--json', '--config', CONFIG, '--out', out(), '--min-workers', '2', '--verify-fraction', '1'], ENV);
    const dashboard = await browser.context.newPage();
    watch(dashboard);
    await dashboard.goto(`${httpBase(c)}/`);
    const honest = await joinTab(c);
    const liar = await joinTab(c, { tamper: 0.5 });
    await tabState(liar, 'quarantined');
    expect(await liar.textContent('#detail')).toMatch(/refused: quarantined: its sums for micro-shards \d+(-\d+)? of step \d+ differ from the coordinator's recomputation/);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash(CONFIG));
    const log = c.proc.out();
    expect(log).toMatch(/quarantining worker b\d \(tab on Chrome .*\): its sums for micro-shards \d+(-\d+)? of step \d+ differ from the coordinator's recomputation \(element 0 of block 0\); it is disconnected and refused for the rest of the run/);
    expect(log).toMatch(/quarantined address 127\.0\.0\.1 for the rest of the run/);
    const states = (s.workerStats as { state: string; verified: number }[]).map((w) => w.state).sort();
    expect(states.filter((x) => x === 'quarantined')).toHaveLength(1);
    await tabState(honest, 'finished');
    // The dashboard says so too: the event, the worker's row, the counters.
    await dashboard.waitForFunction(() => document.getElementById('phase')?.dataset.phase === 'done');
    expect(await dashboard.locator('#events li.bad', { hasText: /quarantining worker b\d/ }).count()).toBeGreaterThan(0);
    expect(await dashboard.locator('#workers tr.quarantined').count()).toBe(1);
    expect(Number(await dashboard.getAttribute('#verified', 'data-value'))).toBeGreaterThan(0);
    expect(await dashboard.textContent('#verify-sub')).toMatch(/1 disputed, 1 quarantined/);
    for (const p of [dashboard, honest, liar]) await p.close();
  });

  it('a tab that comes back to the same coordinator address downloads no dataset byte (counted by the coordinator)', async () => {
    const first = await startCoordinator(['--json', '--config', CONFIG, '--out', out()], ENV);
    const tab = await joinTab(first);
    expect(await first.proc.exited).toMatchObject({ code: 0 });
    const bytes = Number(/dataset: (\d+) bytes served in this run/.exec(first.proc.out())![1]);
    expect(bytes).toBeGreaterThan(100_000);
    await tabState(tab, 'finished');
    expect(await tab.getAttribute('#dataset', 'data-source')).toBe('download');
    // The next run on the same address (so the same origin, the same IndexedDB), the same tab.
    const second = await startCoordinator(['--json', '--config', CONFIG, '--out', out()], ENV, first.port);
    await tab.reload();
    await tab.click('#join');
    expect(await second.proc.exited).toMatchObject({ code: 0 });
    expect(second.proc.out()).toMatch(/dataset: 0 bytes served in this run/);
    expect(second.proc.out()).not.toMatch(/dataset: sent/);
    expect(await tab.getAttribute('#dataset', 'data-source')).toBe('cache');
    await tabLog(tab, "from this browser's storage (nothing downloaded)");
    expect(summaryOf(second.proc).weightsSha256).toBe(await refHash(CONFIG));
    await tab.close();
  });

  it('the dashboard mid-run: curves with points, the workers table filled, the numbers of metrics.jsonl', async () => {
    // Step 20 (of 32) holds still until the test closes the tab that holds it: two epochs are evaluated by then.
    const runDir = out();
    const c = await startCoordinator(['--json', '--config', LONG, '--out', runDir, '--min-workers', '2',
      '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=20,ms=600000'], ENV);
    const page = await browser.context.newPage();
    watch(page);
    await page.goto(`${httpBase(c)}/`);
    const tabs = [await joinTab(c), await joinTab(c)];
    const staller = await Promise.race(tabs.map((t) => tabLog(t, 'chaos: stalling task').then(() => t)));
    await page.bringToFront();
    await page.waitForFunction(() => document.getElementById('step')?.dataset.value === '19' &&
      document.querySelectorAll('#evals tbody tr[data-epoch]').length === 2 &&
      document.querySelectorAll('#workers tbody tr[data-worker]').length === 2);
    const shot = join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(readFileSync(shot).length).toBeGreaterThan(20_000);

    // The curves: what was handed to the charts, and pixels of each series' colour on their canvases.
    expect(await page.getAttribute('#loss-chart', 'data-points')).toBe('19');
    expect(await page.getAttribute('#loss-chart', 'data-test-points')).toBe('2');
    expect(await page.getAttribute('#accuracy-chart', 'data-points')).toBe('2');
    const inked = await page.evaluate(() => {
      const count = (sel: string, rgb: [number, number, number]) => {
        const canvas = document.querySelector<HTMLCanvasElement>(`${sel} canvas`)!;
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (Math.abs(data[i] - rgb[0]) < 24 && Math.abs(data[i + 1] - rgb[1]) < 24 && Math.abs(data[i + 2] - rgb[2]) < 24 && data[i + 3] > 200) n++;
        }
        return n;
      };
      return { train: count('#loss-chart', [47, 111, 223]), test: count('#loss-chart', [224, 121, 43]), accuracy: count('#accuracy-chart', [31, 157, 85]) };
    });
    expect(inked.train).toBeGreaterThan(200);
    expect(inked.test).toBeGreaterThan(30);
    expect(inked.accuracy).toBeGreaterThan(30);

    // The workers table: two tabs, both with work done.
    const rows = await page.$$eval('#workers tbody tr[data-worker]', (trs) => (trs as HTMLTableRowElement[]).map((tr) => ({
      kind: tr.querySelector('.kind')?.textContent, shards: Number(tr.cells[5].dataset.value), speed: Number(tr.cells[4].dataset.value),
    })));
    expect(rows.map((r) => r.kind)).toEqual(['tab', 'tab']);
    for (const r of rows) {
      expect(r.shards).toBeGreaterThan(0);
      expect(r.speed).toBeGreaterThan(0);
    }
    expect(await page.textContent('#workers-kinds')).toBe('2 tabs');
    expect(await page.getAttribute('#phase', 'data-phase')).toBe('training');
    expect(await page.textContent('#eta')).toMatch(/^\d+:\d\d$/);

    // Let the run finish; then every evaluation on the page is a line of metrics.jsonl, to the last bit.
    await staller.close();
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash(LONG));
    await page.waitForFunction(() => document.getElementById('phase')?.dataset.phase === 'done');
    const shown = await page.$$eval('#evals tbody tr[data-epoch]', (trs) => (trs as HTMLTableRowElement[]).map((tr) => Array.from(tr.cells, (td) => td.dataset.value ?? '')));
    const metrics = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(metrics).toHaveLength(4);
    expect(shown.reverse()).toEqual(metrics.map((m) => [m.epoch, m.step, m.trainLoss, m.test.loss, m.test.accuracy, m.test.f1Macro].map(String)));
    const last = metrics[metrics.length - 1];
    expect(Number(await page.getAttribute('#step', 'data-value'))).toBe(last.step);
    expect(Number(await page.getAttribute('#accuracy', 'data-value'))).toBe(last.test.accuracy);
    for (const p of [page, ...tabs.filter((t) => t !== staller)]) await p.close();
  });

  it('no page ran into its Content-Security-Policy', () => {
    expect(cspComplaints).toEqual([]);
  });
});
