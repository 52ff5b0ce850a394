// The compute costs the simulator charges, measured here with the real code
// on the main thread: one micro-shard's forward + backward (leafGradient) at
// each row count a run needs, a vector addition (the tree's), the step
// (applyStep: mean, penalties, SGD, statistics), a bf16 rounding. Each is
// the best of several runs after a warm-up (other work on the machine only
// slows a run down). Calibration runs scale them to the compute the bench
// measured in the same run (its inproc step), projections take them as they
// are.
import { readConfigFile } from '../../coordinator/run/config.js';
import { getLoss } from '../../src/losses/index.js';
import { buildModel, initModel } from '../../src/model/model.js';
import { createOptimizerState } from '../../src/optim/optimizer.js';
import { roundBf16 } from '../../src/reduce/bf16.js';
import { addInto } from '../../src/reduce/tree.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { applyStep, gradLength, leafGradient, planStep } from '../../src/train/step.js';
import type { Workload } from './model.js';

const CONFIGS = { mlp: 'examples/mnist-mlp.json', lstm: 'examples/mnist-lstm.json' } as const;

function best(fn: () => void, warm = 5, runs = 15): number {
  for (let i = 0; i < warm; i++) fn();
  let min = Infinity;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min;
}

export interface ModelCosts {
  model: 'mlp' | 'lstm';
  gradLen: number;
  size: number;
  numTrainable: number;
  leafMs(rows: number): number;
  addMsPerFloat: number;
  applyMsPerFloat: number;
  roundMsPerFloat: number;
}

/** Measures the model of examples/mnist-<model>.json (root: the checkout). */
export function measureCosts(root: string, name: 'mlp' | 'lstm'): ModelCosts {
  const config = readConfigFile(`${root}${CONFIGS[name]}`);
  const model = buildModel(config.model);
  initModel(model, config.seed);
  const loss = getLoss(config.loss);
  const gradLen = gradLength(model);
  const inSize = model.inShape.reduce((a, x) => a * x, 1);
  const out = allocFloats(gradLen);
  const leaf = new Map<number, number>();
  const leafMs = (rows: number): number => {
    const r = Math.max(1, Math.round(rows));
    let ms = leaf.get(r);
    if (ms === undefined) {
      // In the kernels' memory, as a worker's gathered rows are.
      const x = allocFloats(r * inSize);
      for (let i = 0; i < x.length; i++) x[i] = ((i * 7919) % 256) / 255;
      const y = allocFloats(r);
      for (let i = 0; i < r; i++) y[i] = i % 10;
      ms = best(() => leafGradient(model, loss, x, y, r, { training: true, seed: 1, step: 0, rowOffset: 0 }, out), 3, r >= 256 ? 5 : 12);
      leaf.set(r, ms);
    }
    return ms;
  };
  const a = allocFloats(gradLen).fill(1e-3);
  const b = allocFloats(gradLen).fill(2e-3);
  const addMs = best(() => addInto(a, b), 20, 50);
  const plan = planStep(model);
  const state = createOptimizerState(config.optimizer, model.numTrainable);
  const sum = allocFloats(gradLen);
  const applyMs = best(() => { sum.fill(1e-4); sum[model.size + 1] = 64; applyStep(model, plan, sum, config.optimizer, state, 1e-6); }, 20, 50);
  const roundMs = best(() => roundBf16(b, 0, model.numTrainable), 20, 50);
  return {
    model: name, gradLen, size: model.size, numTrainable: model.numTrainable, leafMs,
    addMsPerFloat: addMs / gradLen, applyMsPerFloat: applyMs / model.size, roundMsPerFloat: roundMs / Math.max(1, model.numTrainable),
  };
}

/** A workload of the model at `batch` rows cut into k micro-shards; computeScale multiplies every compute cost. */
export function workload(c: ModelCosts, batch: number, k: number, computeScale = 1): Workload {
  return {
    model: c.model, batch, k, gradLen: c.gradLen, size: c.size, numTrainable: c.numTrainable,
    leafMs: (rows) => computeScale * c.leafMs(rows),
    addMsPerFloat: computeScale * c.addMsPerFloat, applyMsPerFloat: computeScale * c.applyMsPerFloat, roundMsPerFloat: computeScale * c.roundMsPerFloat,
  };
}

/** The in-process step of a workload (what bench:cluster's inproc run does): every leaf, the tree's adds, the step. */
export function inprocMs(w: Workload): number {
  return w.k * w.leafMs(w.batch / w.k) + (w.k - 1) * w.gradLen * w.addMsPerFloat + w.size * w.applyMsPerFloat;
}
