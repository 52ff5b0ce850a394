// The models of the trajectory fixtures (README section 12, sgd_*.json, and
// adam.json; test/fixtures/reference), rebuilt from each case's config
// and parameter names, and which fixture name is which of our tensors.
import type { FixtureCase } from '../fixture.js';
import type { ModelSpec } from '../../model/spec.js';

type Cfg = Record<string, unknown>;

export function num(cfg: Cfg, key: string, fallback?: number): number {
  const v = cfg[key];
  if (typeof v === 'number') return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`config.${key} is missing or not a number`);
}

/** The model spec of a case, and the fixture's parameter names per spec layer (in our order). */
export function specFor(c: FixtureCase): { spec: ModelSpec; names: (string | null)[][] } {
  const cfg = c.config as Cfg;
  if ('conv_W' in c.params) {
    // logits = flatten(maxpool(relu([bn](conv2d(X))))) @ fc_W^T + fc_b: conv 'valid' stride 1, pool window = stride;
    // with bn_gamma, a batch norm over the conv's channels (batchnorm2d.json), and the conv bias only where conv_b is.
    const input = cfg.input as number[];
    if (!Array.isArray(input) || input.length !== 3) throw new Error('config.input must be [C, H, W]');
    const kernel = num(cfg, 'kernel'), pool = num(cfg, 'pool');
    // PyTorch's weight_decay applies to every parameter of the group, biases too.
    const decayAll = num(cfg, 'weight_decay', 0) > 0 ? { regularizeBias: true } : {};
    const useBias = 'conv_b' in c.params;
    const conv: ModelSpec['layers'][number] = { type: 'conv2d', filters: num(cfg, 'filters'), kernelSize: kernel, useBias, ...decayAll };
    const bn = 'bn_gamma' in c.params;
    return {
      spec: {
        inputShape: input, layers: [
          conv,
          ...(bn ? [{ type: 'batchnorm' as const, momentum: num(cfg, 'bn_momentum', 0.1), eps: num(cfg, 'bn_eps', 1e-5) }] : []),
          { type: 'relu' },
          { type: 'maxpool2d', poolSize: pool },
          { type: 'flatten' },
          { type: 'dense', units: num(cfg, 'classes'), ...decayAll },
        ],
      },
      names: [
        useBias ? ['conv_W', 'conv_b'] : ['conv_W'],
        ...(bn ? [['bn_gamma', 'bn_beta', 'bn_running_mean', 'bn_running_var']] : []),
        [], [], [], ['fc_W', 'fc_b'],
      ],
    };
  }
  if (c.op === 'gru' || c.op === 'lstm') {
    const T = num(cfg, 'timesteps'), F = num(cfg, 'input_size'), H = num(cfg, 'hidden_size'), C = num(cfg, 'classes');
    return {
      spec: { inputShape: [T, F], layers: [{ type: c.op, units: H }, { type: 'dense', units: C }] },
      names: [['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'], ['W_fc', 'b_fc']],
    };
  }
  const sizes = cfg.layer_sizes as number[];
  if (!Array.isArray(sizes) || sizes.length !== 4) throw new Error('config.layer_sizes must be [IN, H1, H2, C]');
  const [IN, H1, H2, C] = sizes;
  if ('bn_gamma' in c.params) {
    return {
      spec: {
        inputShape: [IN], layers: [
          { type: 'dense', units: H1 }, { type: 'batchnorm', momentum: 0.1, eps: 1e-5 }, { type: 'tanh' },
          { type: 'dense', units: H2, activation: 'relu' }, { type: 'dense', units: C },
        ],
      },
      names: [['W1', 'b1'], ['bn_gamma', 'bn_beta', 'bn_running_mean', 'bn_running_var'], [], ['W2', 'b2'], ['W3', 'b3']],
    };
  }
  const l2 = num(cfg, 'l2_lambda', 0);
  const reg = l2 > 0 ? { l2 } : {};
  return {
    spec: {
      inputShape: [IN], layers: [
        { type: 'dense', units: H1, activation: 'tanh', ...reg },
        { type: 'dense', units: H2, activation: 'relu', ...reg },
        { type: 'dense', units: C, ...reg },
      ],
    },
    names: [['W1', 'b1'], ['W2', 'b2'], ['W3', 'b3']],
  };
}

/** The optimizer of a case's config: PyTorch's arguments (SGD when config.optimizer is absent). */
export function optimizerFor(cfg: Cfg): Record<string, unknown> {
  const type = cfg.optimizer ?? 'sgd';
  if (type === 'sgd') return { type, lr: num(cfg, 'lr'), momentum: num(cfg, 'momentum', 0) };
  if (type !== 'adam' && type !== 'adamw') throw new Error(`config.optimizer '${String(type)}' is not sgd, adam or adamw`);
  const betas = cfg.betas ?? [0.9, 0.999];
  return { type, lr: num(cfg, 'lr'), betas, eps: num(cfg, 'eps', 1e-8), weightDecay: num(cfg, 'weight_decay', type === 'adamw' ? 0.01 : 0) };
}
