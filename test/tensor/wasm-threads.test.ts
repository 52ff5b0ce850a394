// The kernels in worker threads: the main thread compiles kernels.wasm once
// (kernelsModule()), posts the WebAssembly.Module in workerData (shared, not
// copied; nothing is detached), and the thread instantiates it with its own
// memory through setupKernels. The thread's gradients of an LSTM micro-shard
// are bit-identical to the main thread's.
import { Worker } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/data/sha256.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { useKernels } from '../../src/tensor/setup.js';
import { leafGradient } from '../../src/train/step.js';
import { kernelsModule, setupKernels } from '../../node/kernels/setup.js';
import { ROOT, wasmBytes } from './wasm-helpers.js';

afterAll(() => useKernels(null));

const SPEC = { inputShape: [6, 5], layers: [{ type: 'lstm', units: 9 }, { type: 'dense', units: 4 }] };

// The same computation in both threads (in the worker, from the built dist/ modules).
const LEAF = `
  const model = buildModel(spec);
  initModel(model, 3);
  const rows = 7;
  const x = allocFloats(rows * model.inSize);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
  const y = allocFloats(rows);
  for (let r = 0; r < rows; r++) y[r] = r % 4;
  const out = new Float32Array(model.size + 2);
  leafGradient(model, getLoss('softmax_cross_entropy'), x, y, rows, { training: true, seed: 1, step: 0, rowOffset: 0 }, out);
  return { sha: sha256Hex(new Uint8Array(out.buffer)) };
`;

describe('wasm kernels in worker threads', () => {
  it('a Module compiled once in the main thread runs in a worker thread, with the same bits', async () => {
    wasmBytes(); // built
    const module = kernelsModule();
    expect(kernelsModule()).toBe(module); // compiled once
    expect(setupKernels('wasm', { module })).toBe('wasm-simd');
    const main = new Function('buildModel', 'initModel', 'allocFloats', 'getLoss', 'leafGradient', 'sha256Hex', 'spec', LEAF)(
      buildModel, initModel, allocFloats, getLoss, leafGradient, sha256Hex, SPEC) as { sha: string };

    const dist = (p: string): string => pathToFileURL(ROOT + 'dist/' + p).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      (async () => {
        const { setupKernels } = await import(${JSON.stringify(dist('node/kernels/setup.js'))});
        const { buildModel, initModel } = await import(${JSON.stringify(dist('src/model/model.js'))});
        const { allocFloats } = await import(${JSON.stringify(dist('src/tensor/alloc.js'))});
        const { getLoss } = await import(${JSON.stringify(dist('src/losses/index.js'))});
        const { leafGradient } = await import(${JSON.stringify(dist('src/train/step.js'))});
        const { sha256Hex } = await import(${JSON.stringify(dist('src/data/sha256.js'))});
        const name = setupKernels('wasm', { module: workerData.module, memoryBytes: 16 * 1024 * 1024 });
        const r = (() => { const spec = workerData.spec; ${LEAF} })();
        parentPort.postMessage({ name, sha: r.sha, isModule: workerData.module instanceof WebAssembly.Module });
      })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));
    `;
    const worker = new Worker(code, { eval: true, workerData: { module, spec: SPEC } });
    const reply = await new Promise<{ name?: string; sha?: string; isModule?: boolean; error?: string }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await worker.terminate();
    expect(reply.error).toBeUndefined();
    expect(reply.isModule).toBe(true);
    expect(reply.name).toBe('wasm-simd');
    expect(reply.sha).toBe(main.sha);
  });

  it('setupKernels checks its arguments and switches back to the TypeScript kernels', () => {
    expect(() => setupKernels('wasm', { module: new Uint8Array(4) as never })).toThrow(expect.objectContaining({ code: 'DPT_ERR_CONFIG' }));
    expect(setupKernels('ts')).toBe('typescript');
  });
});
