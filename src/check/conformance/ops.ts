// The per-operation fixtures (test/fixtures/reference/README.md, sections 3-7, 9-11): each case's inputs
// go through the core's own functions and every output and gradient in the
// file is compared. Shapes and values come only from the file.
import type { FixtureCase, FixtureTensor } from '../fixture.js';
import { toF32, transpose } from '../fixture.js';
import { activationOps } from '../../nn/activations.js';
import { denseBackward, denseForward } from '../../nn/dense.js';
import {
  batchNormEvalBackward, batchNormEvalForward, batchNormTrainBackward, batchNormTrainForward,
  runningUpdate, unbiasedVariance,
} from '../../nn/batchnorm.js';
import { lstmTorch } from '../../nn/lstm.js';
import { gruTorch } from '../../nn/gru.js';
import { getLoss } from '../../losses/index.js';
import { FIXTURE_LOSS_OPS } from '../../losses/fixture-ops.js';
import { addL1Grad, addL2Grad, l1Penalty, l2Penalty } from '../../optim/regularization.js';
import { classificationReport, confusionMatrix } from '../../metrics/index.js';
import { CaseChecker } from './result.js';
import { checkAll, need } from './check-all.js';

type Cfg = Record<string, unknown>;

function last(shape: readonly number[]): number {
  return shape.length === 0 ? 1 : shape[shape.length - 1];
}

export function activationCase(c: FixtureCase, ck: CaseChecker): void {
  const op = activationOps[c.op as keyof typeof activationOps];
  if (op === undefined) { ck.fail(`unknown activation op '${c.op}'`); return; }
  const x = need(c.inputs, 'x', 'inputs');
  const C = last(x.shape);
  const R = x.data.length / C;
  const y = new Float32Array(R * C);
  op.forward(y, toF32(x), R, C);
  const dx = new Float32Array(R * C);
  op.backward(dx, toF32(need(c.upstream, 'G', 'upstream')), y, R, C);
  checkAll(ck, 'outputs', c.outputs, { y });
  checkAll(ck, 'grads', c.grads, { x: dx });
}

export function lossCase(c: FixtureCase, ck: CaseChecker): void {
  const bindings = FIXTURE_LOSS_OPS[c.op ?? ''];
  if (bindings === undefined) { ck.fail(`unknown loss op '${c.op}'`); return; }
  for (const b of bindings) {
    const loss = getLoss(b.loss);
    const pred = need(c.inputs, b.pred, 'inputs');
    const D = pred.shape.length === 1 ? 1 : last(pred.shape);
    const N = pred.shape[0];
    const target = toF32(need(c.inputs, b.target, 'inputs'));
    const perSample = new Float64Array(N);
    const dMean = new Float32Array(N * D);
    const total = loss.forwardBackward(toF32(pred), target, N, D, dMean, 1 / N, perSample);
    const dSum = new Float32Array(N * D);
    loss.forwardBackward(toF32(pred), target, N, D, dSum, 1);
    const tag = bindings.length > 1 ? ` (${b.loss})` : '';
    for (const [key, t] of Object.entries(c.outputs)) {
      const value = key === 'loss_per_sample' ? perSample
        : key === 'loss' ? [total / N]
        : key === 'loss_sum' ? [total]
        : key === 'loss_sum_all_elements' ? [total * D]
        : undefined;
      if (value === undefined) ck.fail(`outputs.${key}${tag}: not produced by the core`);
      else ck.check(`outputs.${key}${tag}`, value, t);
    }
    checkAll(ck, `grads${tag}`, c.grads, { [b.pred]: dMean });
    checkAll(ck, `grads_sum${tag}`, c.grads_sum, { [b.pred]: dSum });
  }
}

export function regularizationCase(c: FixtureCase, ck: CaseChecker): void {
  const w = toF32(need(c.params, 'w', 'params'));
  const lambda = (c.config as Cfg).lambda as number;
  const g = new Float64Array(w.length);
  let penalty: number;
  if (c.op === 'l1') { penalty = l1Penalty(w, lambda); addL1Grad(w, lambda, g); }
  else if (c.op === 'l2') { penalty = l2Penalty(w, lambda); addL2Grad(w, lambda, g); }
  else { ck.fail(`unknown regularization op '${c.op}'`); return; }
  checkAll(ck, 'outputs', c.outputs, { penalty: [penalty] });
  checkAll(ck, 'grads', c.grads, { w: g });
}

export function denseCase(c: FixtureCase, ck: CaseChecker): void {
  const x = need(c.inputs, 'x', 'inputs');
  const Wt = need(c.params, 'W', 'params');
  const [O, I] = Wt.shape;
  const R = x.data.length / I;
  const W = transpose(Wt.data, O, I); // ours is (I, O)
  const b = c.params.b ? toF32(c.params.b) : null;
  const y = new Float32Array(R * O);
  denseForward(y, toF32(x), W, b, R, I, O);
  const dx = new Float32Array(R * I), dW = new Float32Array(I * O), db = new Float32Array(O);
  denseBackward(dx, dW, b === null ? null : db, toF32(need(c.upstream, 'G', 'upstream')), toF32(x), W, R, I, O);
  checkAll(ck, 'outputs', c.outputs, { y });
  checkAll(ck, 'grads', c.grads, { x: dx, W: transpose(dW, I, O), W_in_out: dW, b: db });
}

/**
 * batchnorm1d.json (x [N, F]) and batchnorm2d.json (x [N, C, H, W], or
 * [N, C, L]): statistics per channel, the second axis of x, over every other.
 */
export function batchNormCase(c: FixtureCase, ck: CaseChecker): void {
  const cfg = c.config as Cfg;
  const eps = (cfg.eps as number) ?? 1e-5;
  const momentum = (cfg.momentum as number) ?? 0.1;
  const x = need(c.inputs, 'x', 'inputs');
  if (x.shape.length < 2) throw new Error(`inputs.x must be [N, C, ...], got [${x.shape.join(', ')}]`);
  const [N, C] = x.shape;
  const S = x.data.length / (N * C);
  const gamma = toF32(need(c.params, 'gamma', 'params'));
  const beta = toF32(need(c.params, 'beta', 'params'));
  const rm = toF32(need(c.params, 'running_mean', 'params'));
  const rv = toF32(need(c.params, 'running_var', 'params'));
  const G = toF32(need(c.upstream, 'G', 'upstream'));
  const y = new Float32Array(N * C * S), xhat = new Float32Array(N * C * S);
  const rstd = new Float64Array(C);
  const dx = new Float32Array(N * C * S), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
  if (c.op === 'train') {
    const mean = new Float64Array(C), varB = new Float64Array(C), varU = new Float64Array(C);
    batchNormTrainForward(y, xhat, mean, varB, rstd, toF32(x), gamma, beta, N, C, S, eps);
    unbiasedVariance(varU, varB, N * S, C);
    const rmNew = new Float64Array(C), rvNew = new Float64Array(C);
    runningUpdate(rmNew, rm, mean, momentum, C);
    runningUpdate(rvNew, rv, varU, momentum, C);
    batchNormTrainBackward(dx, dgamma, dbeta, G, xhat, gamma, rstd, N, C, S);
    checkAll(ck, 'outputs', c.outputs, {
      y, batch_mean: mean, batch_var_biased: varB, batch_var_unbiased: varU, x_hat: xhat,
      running_mean_updated: rmNew, running_var_updated: rvNew,
    });
  } else if (c.op === 'eval') {
    batchNormEvalForward(y, xhat, rstd, toF32(x), gamma, beta, rm, rv, N, C, S, eps);
    batchNormEvalBackward(dx, dgamma, dbeta, G, xhat, gamma, rstd, N, C, S);
    checkAll(ck, 'outputs', c.outputs, { y });
  } else {
    ck.fail(`unknown batchnorm op '${c.op}'`);
    return;
  }
  checkAll(ck, 'grads', c.grads, { x: dx, gamma: dgamma, beta: dbeta });
}

function recurrentDims(c: FixtureCase, gates: number): { B: number; T: number; F: number; H: number } {
  const x = need(c.inputs, 'x', 'inputs');
  const [B, T, F] = x.shape;
  const H = need(c.params, 'weight_hh', 'params').shape[1];
  if (need(c.params, 'weight_ih', 'params').shape[0] !== gates * H) throw new Error(`params.weight_ih must have ${gates}H rows`);
  return { B, T, F, H };
}

function opt(map: Record<string, FixtureTensor> | undefined, key: string): Float32Array | null {
  const t = map?.[key];
  return t === undefined ? null : toF32(t);
}

export function lstmCase(c: FixtureCase, ck: CaseChecker): void {
  const r = lstmTorch({
    ...recurrentDims(c, 4),
    x: toF32(c.inputs.x), h0: opt(c.inputs, 'h0'), c0: opt(c.inputs, 'c0'),
    weight_ih: toF32(c.params.weight_ih), weight_hh: toF32(c.params.weight_hh),
    bias_ih: toF32(c.params.bias_ih), bias_hh: toF32(c.params.bias_hh),
    G_output: opt(c.upstream, 'G_output'), G_h_n: opt(c.upstream, 'G_h_n'),
  });
  const { grads, ...outputs } = r;
  checkAll(ck, 'outputs', c.outputs, outputs);
  checkAll(ck, 'grads', c.grads, grads);
}

export function gruCase(c: FixtureCase, ck: CaseChecker): void {
  const r = gruTorch({
    ...recurrentDims(c, 3),
    x: toF32(c.inputs.x), h0: opt(c.inputs, 'h0'),
    weight_ih: toF32(c.params.weight_ih), weight_hh: toF32(c.params.weight_hh),
    bias_ih: toF32(c.params.bias_ih), bias_hh: toF32(c.params.bias_hh),
    G_output: opt(c.upstream, 'G_output'), G_h_n: opt(c.upstream, 'G_h_n'),
  });
  const { grads, ...outputs } = r;
  checkAll(ck, 'outputs', c.outputs, outputs);
  checkAll(ck, 'grads', c.grads, grads);
}

export function metricsCase(c: FixtureCase, ck: CaseChecker): void {
  const yTrue = need(c.inputs, 'y_true', 'inputs').data;
  const yPred = need(c.inputs, 'y_pred', 'inputs').data;
  const C = (c.config as Cfg).num_classes as number;
  const cm = confusionMatrix(yTrue, yPred, C);
  const rep = classificationReport(cm);
  const actual: Record<string, ArrayLike<number>> = {
    accuracy: [rep.accuracy],
    confusion_matrix: cm,
    precision_per_class: rep.perClass.precision, recall_per_class: rep.perClass.recall,
    f1_per_class: rep.perClass.f1, support_per_class: rep.perClass.support,
  };
  for (const avg of ['macro', 'micro', 'weighted'] as const) {
    actual[`precision_${avg}`] = [rep[avg].precision];
    actual[`recall_${avg}`] = [rep[avg].recall];
    actual[`f1_${avg}`] = [rep[avg].f1];
  }
  if (rep.binary !== null) {
    actual.precision_binary = [rep.binary.precision];
    actual.recall_binary = [rep.binary.recall];
    actual.f1_binary = [rep.binary.f1];
  }
  checkAll(ck, 'outputs', c.outputs, actual);
}
