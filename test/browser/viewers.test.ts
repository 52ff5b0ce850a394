// What a viewer of the dashboard sees, for real: a coordinator process
// listening on 0.0.0.0 with a token and a viewer token, a `dptrain worker`
// process started as `--name alice-laptop` and a headless Chromium tab that
// joined through /join, and the dashboard opened in Chromium from the link
// the coordinator printed (`/#view=...`). Without the link, the page asks
// for it (401); with a wrong one it says so; with the right one the token
// leaves the address bar for sessionStorage and the dashboard fills in.
// Neither the page's text nor the /live stream holds an IP address (any
// dotted quad or IPv6 address but the bind-any 0.0.0.0), the tab's host
// string or this machine's host name, while the coordinator's stderr names
// the addresses. --public-dashboard: the same, with no credential.
//
// The run is held at step 3 (a stalled range, no step timeout) while the
// test looks; nothing races a sleep.
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { findChromium, launchChromium, type LaunchedBrowser } from '../helpers/chromium.js';
import { killAll, startCoordinator, startWorker, type Coordinator } from '../helpers/procs.js';
import { addressesIn, liveMessages, readLive } from '../helpers/viewers.js';

const CHROMIUM = findChromium();
if (CHROMIUM.skipReason !== null) console.warn(`test/browser/viewers.test.ts skipped: ${CHROMIUM.skipReason}`);

const TOKEN = 'viewers-browser-run-token';
const VIEWER = 'viewers-browser-viewer-token';
const dir = tempDir('dptrain-viewers-browser-');
const CONFIG = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 2 }));
let runs = 0;

/** This machine's host name as a whole word (the worker process gives it in its hello). */
const HOST_NAME = new RegExp(`(?<![\\w.-])${hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`);

describe.skipIf(CHROMIUM.skipReason !== null)('viewers of the dashboard (real Chromium, a real coordinator on 0.0.0.0)', () => {
  let browser: LaunchedBrowser;
  const complaints: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium(CHROMIUM.path);
  }, 120_000);
  afterEach(killAll);
  afterAll(async () => {
    await killAll();
    await browser?.close();
  });

  async function newPage(): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) complaints.push(m.text()); });
    page.on('pageerror', (e) => complaints.push(`page error: ${e.message}`));
    return page;
  }

  /**
   * A coordinator on 0.0.0.0 held at step 3, a worker process named
   * alice-laptop and a tab, both joined; the tab's host string as the
   * coordinator logged it.
   */
  async function runWithVolunteers(extra: string[]): Promise<{ c: Coordinator; base: string; tab: Page; tabHost: string }> {
    const c = await startCoordinator(['--config', CONFIG, '--out', join(dir, `run-${++runs}`), '--min-workers', '2',
      '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=3,ms=600000', ...extra], { DPTRAIN_TOKEN: TOKEN }, 0, '0.0.0.0');
    const base = `http://127.0.0.1:${c.port}`;
    const worker = startWorker(`ws://127.0.0.1:${c.port}`, ['--name', 'alice-laptop', '--threads', '1', '--cache', join(dir, 'cache')], { DPTRAIN_TOKEN: TOKEN });
    const tab = await newPage();
    await tab.goto(`${base}/join#token=${TOKEN}`);
    await tab.click('#join');
    const joined = await c.proc.waitFor(/worker b\d+ \((.+), 127\.0\.0\.1\) joined: 1 thread/);
    const tabHost = joined[1];
    expect(tabHost).toMatch(/^Chrome \d+ on /);
    // The volunteer page says, word for word, what the tab tells the coordinator.
    expect(await tab.textContent('#browser-name')).toBe(tabHost);
    expect((await tab.textContent('#sharing'))!.replace(/\s+/g, ' '))
      .toMatch(/with the organizer's coordinator only, your browser \(Chrome .*\) and your network address; the run's dashboard shows neither, .* Closing the tab stops it at once\./);
    // The organizer's log names the addresses and hosts.
    await c.proc.waitFor(/worker p\d+ (?:"[^"]*" )?\(\S+, 127\.0\.0\.1\) joined: 1 thread/);
    await Promise.race([worker.waitFor(/chaos: stalling task/), tab.waitForFunction(() => (document.getElementById('log')?.textContent ?? '').includes('chaos: stalling task'))]);
    return { c, base, tab, tabHost };
  }

  /** The viewers' view: the dashboard page's text and attributes, and the /live stream, hold no address and no host name. */
  async function expectNothingRevealed(page: Page, base: string, tabHost: string, headers: Record<string, string>): Promise<void> {
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr[data-worker]').length === 2 &&
      Number(document.getElementById('step')?.dataset.value) >= 2 && document.querySelectorAll('#events li').length > 3);
    const rows = await page.$$eval('#workers tbody tr[data-worker]', (trs) => (trs as HTMLTableRowElement[]).map((tr) => ({
      worker: tr.cells[0].textContent, kind: tr.querySelector('.kind')?.textContent, runsIn: tr.cells[2].textContent,
    })).sort((a, b) => String(a.kind).localeCompare(String(b.kind))));
    expect(rows).toEqual([
      { worker: expect.stringMatching(/^p\d+ “alice-laptop”$/), kind: 'process', runsIn: 'Node.js' },
      { worker: expect.stringMatching(/^b\d+$/), kind: 'tab', runsIn: 'Chrome' },
    ]);
    const text = await page.evaluate(() => document.body.innerText);
    const html = await page.evaluate(() => document.documentElement.outerHTML);
    expect(text).toMatch(/worker b\d+ \(Chrome\) joined: 1 thread/);
    expect(text).toMatch(/worker p\d+ (?:"alice-laptop" )?joined: 1 thread/);
    const live = await readLive(base, headers);
    expect(live.status).toBe(200);
    const snapshot = liveMessages(live.text)[0];
    expect(snapshot.workers.map((w: { runsIn: string }) => w.runsIn).sort()).toEqual(['Chrome', 'Node.js']);
    for (const [what, seen] of [['the page', text], ['its HTML', html], ['/live', live.text]] as const) {
      expect(addressesIn(seen), what).toEqual([]);
      expect(seen, what).not.toContain(tabHost);
      expect(seen, what).not.toMatch(HOST_NAME);
      expect(seen, what).not.toContain(TOKEN);
      expect(seen, what).not.toContain(VIEWER);
    }
  }

  it('the viewer link: the page asks for it, refuses a wrong one, and with it shows the run with no address and no host name', async () => {
    const { c, base, tab, tabHost } = await runWithVolunteers(['--viewer-token', VIEWER]);
    await c.proc.waitFor(new RegExp(`dashboard: http://0\\.0\\.0\\.0:${c.port}/#view=${VIEWER} `));

    // No link: the sign-in page, with the 401.
    const page = await newPage();
    const first = await page.goto(`${base}/`);
    expect(first?.status()).toBe(401);
    expect(await page.textContent('#sign-in-message')).toMatch(/This dashboard opens with the viewer link the organizer shares/);
    // A wrong link: refused, and forgotten.
    await page.goto(`${base}/#view=not-the-token`);
    await page.waitForFunction(() => document.getElementById('sign-in-message')?.dataset.state === 'refused');
    expect(await page.textContent('#sign-in-message')).toMatch(/This viewer link is not valid for this run/);
    expect(await page.evaluate(() => sessionStorage.getItem('dptrain.view'))).toBeNull();
    await c.proc.waitFor(/refused a dashboard sign-in from 127\.0\.0\.1: wrong token/);
    // The link the coordinator printed: signed in, the token out of the address bar, the dashboard.
    await page.goto(`${base}/#view=${VIEWER}`);
    await page.waitForFunction(() => document.getElementById('workers') !== null);
    expect(page.url()).toBe(`${base}/`);
    expect(await page.evaluate(() => sessionStorage.getItem('dptrain.view'))).toBe(VIEWER);
    await expectNothingRevealed(page, base, tabHost, { authorization: `Bearer ${VIEWER}` });
    // The run's token opens the feed too; nothing opens it without one.
    expect((await readLive(base, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await readLive(base)).status).toBe(401);
    // A reload keeps the dashboard (the cookie, renewed from sessionStorage).
    const again = await page.reload();
    expect(again?.status()).toBe(200);
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr[data-worker]').length === 2);
    // The organizer's stderr still names them.
    expect(c.proc.out()).toContain(`(${tabHost}, 127.0.0.1) joined`);
    expect(c.proc.out()).toMatch(/worker p\d+ (?:"[^"]*" )?\(\S+, 127\.0\.0\.1\) joined/);
    for (const p of [page, tab]) await p.close();
  });

  it('--public-dashboard: the dashboard opens with no credential, and shows no address and no host name either', async () => {
    const { c, base, tab, tabHost } = await runWithVolunteers(['--public-dashboard']);
    await c.proc.waitFor(/dashboard: \S+\/ \(public: anyone who reaches this port may watch the run, read-only; --public-dashboard\)/);
    const page = await newPage();
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    await expectNothingRevealed(page, base, tabHost, {});
    expect(c.proc.out()).toContain(`(${tabHost}, 127.0.0.1) joined`);
    for (const p of [page, tab]) await p.close();
  });

  it('a restarted coordinator voids the cookies: a tab that came by the link signs in again by itself, one that did not gets the sign-in page', async () => {
    const start = (config: string, port: number) => startCoordinator(['--config', config, '--out', join(dir, `run-${++runs}`), '--viewer-token', VIEWER],
      { DPTRAIN_TOKEN: TOKEN }, port, '0.0.0.0');
    const configs = ['first', 'second', 'third'].map((n) => writeJson(dir, `${n}.json`, smallMlpConfig({ epochs: 2 })));
    const shown = (page: Page, name: string) => page.waitForFunction((n) => document.getElementById('run-name')?.textContent === n &&
      document.getElementById('phase')?.dataset.phase === 'waiting-for-workers', name, { timeout: 60_000 });
    const restart = async (c: Coordinator, config: string) => {
      c.proc.kill('SIGKILL');
      await c.proc.exited;
      return start(config, c.port);
    };
    const first = await start(configs[0], 0);
    const base = `http://127.0.0.1:${first.port}`;
    const withLink = await newPage();
    await withLink.goto(`${base}/#view=${VIEWER}`);
    await shown(withLink, 'first.json');
    // Restarted: the old cookie is refused (401), the page signs in again from sessionStorage.
    const second = await restart(first, configs[1]);
    await shown(withLink, 'second.json');
    // Another tab of the same browser: the cookie lets it in, but it holds no token of its own.
    const without = await newPage();
    expect((await without.goto(`${base}/`))?.status()).toBe(200);
    await shown(without, 'second.json');
    await withLink.close();
    // Restarted again, with no tab left to renew the cookie: that tab lands on the sign-in page.
    const third = await restart(second, configs[2]);
    await without.waitForFunction(() => document.getElementById('sign-in-message') !== null, undefined, { timeout: 60_000 });
    expect(await without.textContent('#sign-in-message')).toMatch(/This dashboard opens with the viewer link/);
    expect(without.url()).toBe(`${base}/`);
    expect(third.proc.out()).not.toMatch(/refused a dashboard sign-in/);
    await without.close();
  });

  it('no page ran into its Content-Security-Policy', () => {
    expect(complaints).toEqual([]);
  });
});
