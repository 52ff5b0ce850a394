// The browser page of test/browser/browser.test.ts (bundled by esbuild for
// the browser, served over HTTP to headless Chromium). It loads the SAME
// dist/wasm/kernels.wasm bytes as Node, makes them the active kernels, runs
// the conformance fixtures and the training fingerprints, and leaves the
// results in globalThis.__dptrain (a promise the test awaits).
import { runFixtureFile } from '../../src/check/conformance/index.js';
import { FixtureFile } from '../../src/check/fixture.js';
import { decodeDataset } from '../../src/data/binary.js';
import { toHex } from '../../src/data/sha256.js';
import { activeKernelName, useKernels, useWasmKernels } from '../../src/tensor/setup.js';
import { fingerprint, RUNS } from './fingerprint.js';

export interface PageResult {
  kernels: string;
  userAgent: string;
  fixtures: { file: string; cases: number; failed: number; worstRelErr: number; failures: string[] }[];
  /** weightsSha256 per run with the wasm kernels, and the same digest from crypto.subtle. */
  wasm: { name: string; weightsSha256: string; subtleSha256: string; loss: number }[];
  /** weightsSha256 per run with the TypeScript kernels. */
  ts: { name: string; weightsSha256: string }[];
}

async function get(path: string): Promise<Response> {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
  return r;
}

async function run(): Promise<PageResult> {
  // The kernels, from the very bytes Node loads (compiled asynchronously: a
  // browser's main thread may refuse to compile a module synchronously).
  await useWasmKernels(await (await get('/kernels.wasm')).arrayBuffer());
  const kernels = activeKernelName();

  const names = (await (await get('/fixtures/index.json')).json()) as string[];
  const fixtures: PageResult['fixtures'] = [];
  for (const file of names) {
    const parsed = FixtureFile.safeParse(await (await get(`/fixtures/${file}`)).json());
    if (!parsed.success) {
      fixtures.push({ file, cases: 0, failed: 1, worstRelErr: NaN, failures: ['not in the fixture format'] });
      continue;
    }
    const r = runFixtureFile(file, parsed.data);
    fixtures.push({
      file, cases: r.cases, failed: r.failed, worstRelErr: r.worstRelErr,
      failures: r.results.filter((c) => !c.passed).map((c) => `${c.label}: ${c.failures.slice(0, 3).join('; ')}`),
    });
  }

  const ds = decodeDataset(new Uint8Array(await (await get('/data.bin')).arrayBuffer()));
  const wasm: PageResult['wasm'] = [];
  for (const r of RUNS) {
    const f = fingerprint(r, ds);
    const digest = await crypto.subtle.digest('SHA-256', f.params.slice()); // slice: a plain ArrayBuffer, as digest wants
    wasm.push({ name: f.name, weightsSha256: f.weightsSha256, subtleSha256: toHex(new Uint8Array(digest)), loss: f.loss });
  }
  useKernels(null);
  const ts = RUNS.map((r) => ({ name: r.name, weightsSha256: fingerprint(r, ds).weightsSha256 }));
  return { kernels, userAgent: navigator.userAgent, fixtures, wasm, ts };
}

(globalThis as unknown as { __dptrain: Promise<PageResult> }).__dptrain = run();
