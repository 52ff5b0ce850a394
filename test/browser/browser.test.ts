// The core in a real browser: headless Chromium (Debian's `chromium`,
// installed by .ci/run; nothing is installed here) driven by playwright-core
// loads a page bundled from test/browser/page.ts over a real HTTP server on
// 127.0.0.1. The page loads the SAME dist/wasm/kernels.wasm bytes as Node,
// runs every conformance fixture of test/fixtures/reference and the training
// fingerprints of fingerprint.ts (MLP, LSTM, GRU on 512 MNIST digits served
// as a dataset blob). Asserted: WebAssembly SIMD kernels active in the page,
// every fixture passes there, and every weightsSha256 equals Node's for the
// same run with the same kernels. Without Chromium the suite skips and says
// why (test/helpers/chromium.ts); .ci/run makes it required.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDataset } from '../../src/data/binary.js';
import { useKernels } from '../../src/tensor/setup.js';
import { findChromium, launchChromium, type LaunchedBrowser } from '../helpers/chromium.js';
import { FIXTURES_DIR } from '../helpers/fixtures.js';
import { newKernels, ROOT, wasmBytes } from '../tensor/wasm-helpers.js';
import { fingerprint, RUNS } from './fingerprint.js';
import { fingerprintBlob } from './mnist-subset.js';
import type { PageResult } from './page.js';

const CHROMIUM = findChromium();
if (CHROMIUM.skipReason !== null) console.warn(`test/browser/browser.test.ts skipped: ${CHROMIUM.skipReason}`);

describe.skipIf(CHROMIUM.skipReason !== null)('headless Chromium', () => {
  let server: Server | undefined;
  let browser: LaunchedBrowser | undefined;
  let origin = '';
  let blob: Uint8Array;
  let result: PageResult;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [join(ROOT, 'test/browser/page.ts')], bundle: true, write: false,
      platform: 'browser', format: 'esm', target: 'es2022', logLevel: 'silent',
    });
    const pageJs = bundle.outputFiles[0].text;
    const wasm = wasmBytes();
    blob = await fingerprintBlob();
    const fixtureNames = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.json')).sort();

    const routes = new Map<string, [string, string | Uint8Array]>([
      ['/', ['text/html', '<!doctype html><meta charset="utf-8"><title>dptrain</title><script type="module" src="/page.js"></script>']],
      ['/page.js', ['text/javascript', pageJs]],
      ['/kernels.wasm', ['application/wasm', wasm]],
      ['/data.bin', ['application/octet-stream', blob]],
      ['/fixtures/index.json', ['application/json', JSON.stringify(fixtureNames)]],
      ...fixtureNames.map((f): [string, [string, Uint8Array]] => [`/fixtures/${f}`, ['application/json', readFileSync(join(FIXTURES_DIR, f))]]),
    ]);
    const http = createServer((req, res) => {
      const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (req.method !== 'GET' || route === undefined) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': route[0], 'cache-control': 'no-store' }).end(route[1]);
    });
    server = http;
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;

    browser = await launchChromium(CHROMIUM.path);
    const page = browser.context.pages()[0] ?? await browser.context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => (globalThis as { __dptrain?: unknown }).__dptrain !== undefined);
    try {
      result = await page.evaluate(() => (globalThis as unknown as { __dptrain: Promise<PageResult> }).__dptrain);
    } catch (err) {
      throw new Error(`the page failed: ${(err as Error).message}\n${errors.join('\n')}`);
    }
    await browser.close();
    browser = undefined;
  }, 300_000);

  afterAll(async () => {
    await browser?.close(); // still open if the page failed
    // Only a server that was started: close() of one that never listened calls back with an error, or never.
    const started = server;
    if (started !== undefined) await new Promise<void>((resolve) => started.close(() => resolve()));
    useKernels(null);
  });

  it('runs the WebAssembly SIMD kernels', () => {
    expect(result.userAgent).toMatch(/Chrome\//);
    expect(result.kernels).toBe('wasm-simd');
  });

  it('passes every conformance fixture', () => {
    const names = readdirSync(FIXTURES_DIR).filter((f) => f.endsWith('.json')).sort();
    expect(result.fixtures.map((f) => f.file)).toEqual(names);
    for (const f of result.fixtures) {
      expect(f.failures, f.file).toEqual([]);
      expect(f.failed, f.file).toBe(0);
      expect(f.cases, f.file).toBeGreaterThan(0);
    }
  });

  it('trains to the same weightsSha256 as Node with the same kernels', () => {
    const ds = decodeDataset(blob);
    useKernels(newKernels(128 * 1024 * 1024));
    const node = RUNS.map((r) => fingerprint(r, ds));
    useKernels(null);
    const nodeTs = RUNS.map((r) => fingerprint(r, ds));
    for (let i = 0; i < RUNS.length; i++) {
      const b = result.wasm[i];
      expect(b.name).toBe(RUNS[i].name);
      expect(Number.isFinite(b.loss)).toBe(true);
      expect(b.subtleSha256, `${b.name}: sha256.ts against crypto.subtle`).toBe(b.weightsSha256);
      expect(b.weightsSha256, `${b.name}: browser vs Node, wasm kernels`).toBe(node[i].weightsSha256);
    }
    // The TypeScript kernels, for the record: the MLP and the CNNs are bit-identical to the wasm run everywhere.
    for (const name of ['mlp', 'cnn', 'cnn-bn']) {
      const i = RUNS.findIndex((r) => r.name === name);
      expect(result.ts[i].weightsSha256, `${name}: browser TypeScript kernels vs Node wasm`).toBe(node[i].weightsSha256);
    }
    console.log('TypeScript kernels, browser vs Node:', result.ts.map((t, i) =>
      `${t.name} ${t.weightsSha256 === nodeTs[i].weightsSha256 ? 'same' : 'DIFFERENT'}`).join(', '));
  });
});
