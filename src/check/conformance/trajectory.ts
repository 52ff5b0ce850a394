// The trajectory fixtures (test/fixtures/reference/README.md, section 12:
// sgd_*.json; adam.json): rebuild the model and the optimizer from the
// file's config (trajectory-models.ts), load its initial weights, run its
// exact minibatches through the trainer's own step (micro-shards, tree
// reduction, applyStep) and compare per-step losses, the parameters after
// step 1 and at the end, the step-1 gradients, the optimizer's moments
// where the file has them (<param>_exp_avg(_sq)_after_step<k>) and the
// final model's full-data outputs.
import type { FixtureCase, FixtureTensor } from '../fixture.js';
import { toF32, transpose } from '../fixture.js';
import { buildModel, initModel, type Model } from '../../model/model.js';
import { getLoss } from '../../losses/index.js';
import { OptimizerConfig, createOptimizerState, type OptimizerState } from '../../optim/optimizer.js';
import { applyStep, gradLength, leafGradient, planStep } from '../../train/step.js';
import { computeBatch, shardBounds, type BatchData } from '../../train/batch.js';
import { CaseChecker } from './result.js';
import { num, optimizerFor, specFor } from './trajectory-models.js';

type Cfg = Record<string, unknown>;

/** How a fixture parameter name maps onto one of our flat tensors. */
interface Binding {
  /** Entry index in model.entries. */
  entry: number;
  /** The fixture stores it transposed relative to us ([out, in] vs our [in, out]). */
  transposed: boolean;
}

/** Fixture name -> our tensor, for every parameter and statistics buffer. */
function bindings(model: Model, names: (string | null)[][]): Map<string, Binding> {
  const map = new Map<string, Binding>();
  const bySpec = new Map<number, number[]>();
  model.entries.forEach((e, i) => {
    const list = bySpec.get(e.specIndex) ?? [];
    list.push(i);
    bySpec.set(e.specIndex, list);
  });
  // Entries of a spec layer: trainable first, then statistics, in layer order.
  names.forEach((list, specIndex) => {
    const entries = bySpec.get(specIndex) ?? [];
    list.forEach((name, j) => {
      if (name === null) return;
      const entry = entries[j];
      const e = model.entries[entry];
      const isMatrix = e.shape.length === 2;
      map.set(name, { entry, transposed: isMatrix });
      if (isMatrix && e.layerType === 'dense') map.set(`${name}_in_out`, { entry, transposed: false });
    });
  });
  return map;
}

function ours(model: Model, buf: Float32Array, b: Binding): Float32Array {
  const e = model.entries[b.entry];
  const v = buf.subarray(e.offset, e.offset + e.size);
  return b.transposed ? transpose(v, e.shape[0], e.shape[1]) : v;
}

function load(model: Model, b: Binding, t: FixtureTensor): void {
  const e = model.entries[b.entry];
  const v = model.params.subarray(e.offset, e.offset + e.size);
  if (t.data.length !== e.size) throw new Error(`parameter size ${t.data.length} does not fit our ${e.size}`);
  v.set(b.transposed ? transpose(t.data, e.shape[1], e.shape[0]) : toF32(t));
}

/** The outputs <param>_exp_avg(_sq)_after_step<k> that fall on the update just applied (state.step = k). */
function checkMoments(checker: CaseChecker, c: FixtureCase, model: Model, bind: Map<string, Binding>, state: OptimizerState): void {
  for (const [key, t] of Object.entries(c.outputs)) {
    const m = /^(.+)_exp_avg(_sq)?_after_step(\d+)$/.exec(key);
    if (m === null || Number(m[3]) !== state.step) continue;
    const b = bind.get(m[1]);
    if (b === undefined || state.m.length === 0) checker.fail(`outputs.${key}: no matching parameter or optimizer moment`);
    else checker.check(`outputs.${key}`, ours(model, m[2] === undefined ? state.m : state.v, b), t);
  }
}

export function runTrajectoryCase(c: FixtureCase, rtol: number, atol: number): CaseChecker {
  const checker = new CaseChecker(c.label, c.op, rtol, atol);
  const cfg = c.config as Cfg;
  const { spec, names } = specFor(c);
  const model = buildModel(spec);
  initModel(model, 0);
  const bind = bindings(model, names);
  for (const [name, t] of Object.entries(c.params)) {
    const b = bind.get(name);
    if (b === undefined) { checker.fail(`params.${name}: no matching parameter in the model`); continue; }
    if (!name.endsWith('_in_out')) load(model, b, t);
  }
  const loss = getLoss('softmax_cross_entropy');
  const X = toF32(c.inputs.X);
  const Y = toF32(c.inputs.y);
  const batches = c.inputs.batches;
  const steps = num(cfg, 'steps', batches.shape[0]);
  const bs = batches.shape[1];
  const optimizer = OptimizerConfig.parse(optimizerFor(cfg));
  const state = createOptimizerState(optimizer, model.numTrainable);
  const plan = planStep(model);
  const workers = num(cfg, 'workers', 1);
  const uniform = cfg.weighting === 'uniform_1_over_K';
  const xs = model.inSize;
  const xb = new Float32Array(bs * xs);
  const yb = new Float32Array(bs);
  const sum = new Float32Array(gradLength(model));
  const leaf = new Float32Array(gradLength(model));
  const losses: number[] = [];
  const shardLosses: number[] = [];

  for (let t = 0; t < steps; t++) {
    for (let r = 0; r < bs; r++) {
      const i = batches.data[t * bs + r];
      xb.set(X.subarray(i * xs, (i + 1) * xs), r * xs);
      yb[r] = Y[i];
    }
    const data: BatchData = { x: xb, y: yb, rows: bs, xSize: xs, ySize: 1 };
    if (uniform) {
      // The WRONG combination the file includes for contrast: (1/K) sum_k mean_k,
      // fed to applyStep as if it were a sum over bs samples.
      sum.fill(0);
      let lossSum = 0;
      for (let k = 0; k < workers; k++) {
        const [s, e] = shardBounds(bs, workers, k);
        leafGradient(model, loss, xb.subarray(s * xs, e * xs), yb.subarray(s, e), e - s, { training: true, seed: 0, step: t, rowOffset: s }, leaf);
        const w = bs / (workers * (e - s));
        for (let i = 0; i < model.size; i++) sum[i] += leaf[i] * w;
        shardLosses.push(leaf[model.size] / (e - s));
        lossSum += leaf[model.size];
      }
      // The reported loss is still the mean over the global batch (the fixtures' README, section 12).
      sum[model.size] = lossSum;
      sum[model.size + 1] = bs;
    } else {
      computeBatch(model, loss, data, workers, { seed: 0, step: t }, sum);
      if (workers > 1) {
        for (let k = 0; k < workers; k++) {
          const [s, e] = shardBounds(bs, workers, k);
          const pred = model.forward(xb.subarray(s * xs, e * xs), e - s, { training: false, seed: 0, step: t, rowOffset: s });
          shardLosses.push(loss.forwardBackward(pred, yb.subarray(s, e), e - s, model.outSize, new Float32Array((e - s) * model.outSize), 1) / (e - s));
        }
      }
    }
    const result = applyStep(model, plan, sum, optimizer, state, optimizer.lr);
    losses.push(result.loss);
    checkMoments(checker, c, model, bind, state);
    if (t === 0) {
      for (const [name, g] of Object.entries(c.grads ?? {})) {
        const b = bind.get(name);
        if (b === undefined) checker.fail(`grads.${name}: no matching parameter`);
        else checker.check(`grads.${name}`, ours(model, sum, b), g);
      }
      for (const [key, t1] of Object.entries(c.outputs)) {
        if (!key.startsWith('params_after_step1_')) continue;
        const b = bind.get(key.slice('params_after_step1_'.length));
        if (b === undefined) checker.fail(`outputs.${key}: no matching parameter`);
        else checker.check(`outputs.${key}`, ours(model, model.params, b), t1);
      }
    }
  }

  const out = c.outputs;
  if (out.losses) checker.check('outputs.losses', losses, out.losses);
  if (out.single_process_losses && !uniform) checker.check('outputs.single_process_losses', losses, out.single_process_losses);
  if (out.shard_losses && workers > 1) checker.check('outputs.shard_losses', shardLosses, out.shard_losses);
  for (const [key, tensor] of Object.entries(out)) {
    if (!key.startsWith('final_')) continue;
    const b = bind.get(key.slice('final_'.length));
    if (b === undefined) checker.fail(`outputs.${key}: no matching parameter`);
    else checker.check(`outputs.${key}`, ours(model, model.params, b), tensor);
  }
  if (out.full_logits) {
    const n = X.length / xs;
    const logits = model.forward(X, n, { training: false, seed: 0, step: 0, rowOffset: 0 });
    checker.check('outputs.full_logits', logits, out.full_logits);
    const dummy = new Float32Array(n * model.outSize);
    const full = loss.forwardBackward(logits, Y, n, model.outSize, dummy, 1) / n;
    if (out.full_loss) checker.check('outputs.full_loss', [full], out.full_loss);
    if (out.full_accuracy) {
      let correct = 0;
      for (let r = 0; r < n; r++) {
        let best = 0;
        for (let j = 1; j < model.outSize; j++) if (logits[r * model.outSize + j] > logits[r * model.outSize + best]) best = j;
        if (best === Y[r]) correct++;
      }
      checker.check('outputs.full_accuracy', [correct / n], out.full_accuracy);
    }
  }
  return checker;
}
