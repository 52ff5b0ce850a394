// A volunteer tab's compute (a dedicated Web Worker started by the tab
// worker): the same WebAssembly kernels as Node (the very kernels.wasm
// bytes, fetched from the coordinator) and the core's range compute
// (src/train/range.ts), exactly what a `dptrain worker` thread runs. It
// knows nothing of the network. Nothing is ever transferred out of this
// isolate (results are copied): a detached buffer would slow its kernels
// for good (docs/design.md).
import * as z from 'zod';
import { decodeDataset } from '../../src/data/binary.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel } from '../../src/model/model.js';
import { alignedBlocks } from '../../src/reduce/tree.js';
import { activeKernelName, useKernels, useWasmKernels } from '../../src/tensor/setup.js';
import { createRangeWorker, rowsOf, type RangeWorker } from '../../src/train/range.js';
import type { NodeRounding } from '../../src/reduce/tree.js';
import { nodeRounding } from '../../src/reduce/bf16.js';
import type { ComputeToTab, TabToCompute } from './tab-messages.js';

// Under the page's Content-Security-Policy zod must not try `new Function`.
z.config({ jitless: true });

interface Scope {
  postMessage(message: ComputeToTab): void;
  addEventListener(type: 'message', listener: (e: MessageEvent<TabToCompute>) => void): void;
}
const scope = self as unknown as Scope;

/** --grad-wire bf16: the nodes the tab forms are rounded as everywhere else. */
let session: { key: string; worker: RangeWorker; round: NodeRounding | undefined } | null = null;
// Messages are handled one at a time, in order (init is asynchronous).
let queue: Promise<void> = Promise.resolve();

async function handle(m: TabToCompute): Promise<void> {
  switch (m.type) {
    case 'init': {
      if (m.kernels === 'wasm') {
        const res = await fetch(m.wasmUrl);
        if (!res.ok) throw new Error(`GET ${m.wasmUrl}: HTTP ${res.status}`);
        await useWasmKernels(await res.arrayBuffer());
      } else {
        useKernels(null);
      }
      scope.postMessage({ type: 'initialized', kernels: activeKernelName() });
      return;
    }
    case 'session': {
      if (session?.key !== m.key) {
        const ds = decodeDataset(new Uint8Array(m.dataset), { source: 'the training set' });
        const model = buildModel(m.session.model);
        const xSize = ds.x.length / ds.n;
        if (model.inSize !== xSize) throw new Error(`the model takes ${model.inSize} inputs, the dataset has ${xSize}`);
        session = {
          key: m.key,
          worker: createRangeWorker(model, getLoss(m.session.loss), m.session.seed, { x: ds.x, y: ds.y, n: ds.n, xSize, ySize: ds.y.length / ds.n }, m.session.maxBatch),
          round: nodeRounding(m.session.gradWire ?? 'f32', model.numTrainable),
        };
      }
      scope.postMessage({ type: 'ready', key: m.key });
      return;
    }
    case 'weights':
      session?.worker.setWeights(m.version, m.params);
      return;
    case 'task': {
      const t = m.task;
      const w = session?.worker;
      const problem = w === undefined ? 'no session' : w.version !== t.version ? `holds weights version ${w.version}, the task needs ${t.version}` : w.check(t);
      if (w === undefined || problem !== null) {
        scope.postMessage({ type: 'failed', taskId: t.taskId, reason: problem ?? 'no session' });
        return;
      }
      const t0 = performance.now();
      const g = w.gradLen;
      const sums = new Float32Array(alignedBlocks(t.k, t.start, t.end).length * g);
      try {
        const blocks = w.compute(t, (b, _node, sum) => sums.set(sum, b * g), session?.round);
        const [r0, r1] = rowsOf(t);
        scope.postMessage({ type: 'result', taskId: t.taskId, blocks, sums, computeMs: performance.now() - t0, samples: r1 - r0 });
      } catch (err) {
        scope.postMessage({ type: 'failed', taskId: t.taskId, reason: (err as Error).message.slice(0, 1000) });
      }
      return;
    }
  }
}

scope.addEventListener('message', (e) => {
  queue = queue.then(() => handle(e.data)).catch((err: Error) => scope.postMessage({ type: 'error', message: err.message }));
});
