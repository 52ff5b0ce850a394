// A browser page of a user's, bundled by esbuild from the installed package
// (dptrain/core and its kernels.wasm through esbuild's file loader) and run
// in headless Chromium by test/package/package.test.ts: it loads the model
// file Node saved and predicts the rows Node predicted.
import { initKernels, loadModel } from 'dptrain/core';
import kernelsUrl from 'dptrain/kernels.wasm';

export interface PageResult {
  kernels: string;
  classes: number[];
  labels: string[];
  probabilities: number[];
}

async function get(path: string): Promise<Response> {
  const r = await fetch(path);
  if (!r.ok) throw new Error(`GET ${path}: ${r.status}`);
  return r;
}

async function run(): Promise<PageResult> {
  const kernels = await initKernels({ wasm: kernelsUrl });
  const model = loadModel(new Uint8Array(await (await get('/model.dptmodel')).arrayBuffer()));
  const rows = (await (await get('/rows.json')).json()) as number[][];
  const p = model.predict(rows);
  if (p.task !== 'classification') throw new Error('expected class predictions');
  return { kernels, classes: Array.from(p.classes), labels: p.labels, probabilities: Array.from(p.probabilities ?? []) };
}

(globalThis as unknown as { __result: Promise<PageResult> }).__result = run();
