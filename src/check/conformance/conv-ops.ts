// The convolution and pooling fixtures (test/fixtures/reference: conv2d.json,
// pool2d.json): each case's config is taken as PyTorch's arguments, the
// geometry and every tensor shape come from the file, and the active
// kernels (TypeScript or WebAssembly) compute the outputs and gradients.
import type { FixtureCase } from '../fixture.js';
import { toF32 } from '../fixture.js';
import { conv2dBackward, conv2dForward, toHwio } from '../../nn/conv2d.js';
import { windowGeometry, type Pair } from '../../nn/conv-geometry.js';
import { convKernels } from '../../tensor/conv.js';
import { CaseChecker } from './result.js';
import { checkAll, need } from './check-all.js';

type Cfg = Record<string, unknown>;

/** A [height, width] (or one number) config entry; `fallback` when absent. */
function pair(cfg: Cfg, key: string, fallback?: number): Pair {
  const v = cfg[key];
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x >= 0)) return [v[0] as number, v[1] as number];
  if (v === undefined && fallback !== undefined) return fallback;
  throw new Error(`config.${key} must be a whole number or [height, width], got ${JSON.stringify(v)}`);
}

export function conv2dCase(c: FixtureCase, ck: CaseChecker): void {
  const cfg = c.config as Cfg;
  const x = need(c.inputs, 'x', 'inputs');
  const Wt = need(c.params, 'W', 'params');
  if (x.shape.length !== 4 || Wt.shape.length !== 4) throw new Error('inputs.x must be [N, C, H, W] and params.W [O, C, kh, kw]');
  const [N, C, H, Wd] = x.shape;
  const [O, , kh, kw] = Wt.shape;
  const g = windowGeometry('conv2d', [C, H, Wd], O, [kh, kw], pair(cfg, 'stride', 1), pair(cfg, 'padding', 0), pair(cfg, 'dilation', 1));
  const b = c.params.b ? toF32(c.params.b) : null;
  const k = convKernels();
  const keep = new Float32Array(k.convKeepLength(g, N)), scratch = new Float32Array(k.convScratchLength(g, N));
  const W = toF32(Wt), xs = toF32(x);
  const y = new Float32Array(N * O * g.Ho * g.Wo);
  conv2dForward(y, xs, W, b, g, N, keep, scratch);
  const dx = new Float32Array(xs.length), dW = new Float32Array(W.length), db = new Float32Array(O);
  conv2dBackward(dx, dW, b === null ? null : db, toF32(need(c.upstream, 'G', 'upstream')), xs, W, g, N, keep, scratch);
  checkAll(ck, 'outputs', c.outputs, { y });
  checkAll(ck, 'grads', c.grads, { x: dx, W: dW, W_hwio: toHwio(dW, O, C, kh, kw), ...(b === null ? {} : { b: db }) });
}

export function pool2dCase(c: FixtureCase, ck: CaseChecker): void {
  const cfg = c.config as Cfg;
  const x = need(c.inputs, 'x', 'inputs');
  if (x.shape.length !== 4) throw new Error('inputs.x must be [N, C, H, W]');
  const [N, C, H, W] = x.shape;
  const kernel = pair(cfg, 'kernel_size');
  const g = windowGeometry('pool2d', [C, H, W], C, kernel, pair(cfg, 'stride', 0) || kernel, pair(cfg, 'padding', 0), pair(cfg, 'dilation', 1));
  const k = convKernels();
  const xs = toF32(x), G = toF32(need(c.upstream, 'G', 'upstream'));
  const y = new Float32Array(N * C * g.Ho * g.Wo), dx = new Float32Array(xs.length);
  if (c.op === 'max') {
    const argmax = new Float32Array(y.length);
    k.maxPoolForward(y, argmax, xs, g, N);
    k.maxPoolBackward(dx, G, argmax, g, N);
  } else if (c.op === 'avg') {
    const countIncludePad = cfg.count_include_pad !== false;
    k.avgPoolForward(y, xs, g, N, countIncludePad);
    k.avgPoolBackward(dx, G, g, N, countIncludePad);
  } else {
    ck.fail(`unknown pooling op '${c.op}' (known: max, avg)`);
    return;
  }
  checkAll(ck, 'outputs', c.outputs, { y });
  checkAll(ck, 'grads', c.grads, { x: dx });
}
