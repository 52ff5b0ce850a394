#!/usr/bin/env python3
# Writes test/fixtures/reference/batchnorm2d.json: PyTorch 1.13's BatchNorm2d
# (and BatchNorm1d on [N, C, L]) in float64, in the fixture format of
# test/fixtures/reference/README.md (section 15 describes this file).
#
#   /usr/bin/python3 scripts/gen_batchnorm2d_fixture.py [OUT.json]
#
# Needs Debian's python3-torch (1.13) and numpy. Deterministic: fixed seeds,
# float64 throughout, every input rounded to float32 first.
#
# Per-op cases (op 'train' / 'eval'): nn.BatchNorm2d (nn.BatchNorm1d for a
# 3-D x) with the given running statistics, one forward in that mode, loss =
# sum(y * G), the gradients of x, gamma and beta, and in training mode the
# batch statistics and the module's running statistics after the step.
#
# Trajectory cases (inputs.batches): a small CNN with BatchNorm2d,
#   logits = flatten(maxpool(relu(bn(conv2d(X))))) @ fc_W^T + fc_b,
# trained in training mode every step. config.workers = K cuts every
# minibatch into K contiguous micro-shards (numpy.array_split) with their
# own batch statistics (ghost batch norm): the loss is sum_k (n_k/n) mean
# CE_k, and the running statistics move once per step by the sample-weighted
# mean of the micro-shards' statistics (the unbiased variance of each),
#   s = (1 - momentum) s + momentum sum_k (n_k/n) stat_k.
# With K = 1 that is PyTorch's own BatchNorm2d (the generator checks it
# against the module).
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

torch.set_default_dtype(torch.float64)
OUT = sys.argv[1] if len(sys.argv) > 1 else 'test/fixtures/reference/batchnorm2d.json'
SEED = 23
rng = np.random.default_rng(SEED)


def f32(a):
    """float64 numbers that are exactly float32."""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def randn(*shape, scale=1.0, offset=0.0):
    return f32(rng.standard_normal(shape) * scale + offset)


def uniform(lo, hi, *shape):
    return f32(rng.uniform(lo, hi, shape))


def tensor(a, dtype='float64'):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if dtype == 'float64':
        flat = [float(v) for v in a.astype(np.float64).ravel()]
        assert all(np.isfinite(flat)), 'NaN or Infinity in a fixture tensor'
    else:
        flat = [int(v) for v in a.ravel()]
    return {'shape': list(a.shape), 'dtype': dtype, 'data': flat}


def t(a):
    return torch.tensor(a, dtype=torch.float64)


def close(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert np.allclose(a, b, rtol=1e-12, atol=1e-13), f'{what}: {np.abs(a - b).max()}'


# ---------------------------------------------------------------- per-op cases

def bn_module(C, rank, eps, momentum, gamma, beta, rm, rv):
    m = (nn.BatchNorm2d if rank == 4 else nn.BatchNorm1d)(C, eps=eps, momentum=momentum)
    with torch.no_grad():
        m.weight.copy_(t(gamma))
        m.bias.copy_(t(beta))
        m.running_mean.copy_(t(rm))
        m.running_var.copy_(t(rv))
    return m


def op_case(label, op, x, gamma, beta, rm, rv, eps=1e-5, momentum=0.1):
    N, C = x.shape[:2]
    axes = (0,) + tuple(range(2, x.ndim))
    G = randn(*x.shape)
    m = bn_module(C, x.ndim, eps, momentum, gamma, beta, rm, rv)
    m.train(op == 'train')
    xt = t(x).requires_grad_(True)
    y = m(xt)
    (y * t(G)).sum().backward()
    case = {
        'label': label, 'op': op,
        'config': {'eps': eps, 'momentum': momentum, 'num_features': C, 'module': type(m).__name__},
        'inputs': {'x': tensor(x)},
        'params': {'gamma': tensor(gamma), 'beta': tensor(beta), 'running_mean': tensor(rm), 'running_var': tensor(rv)},
        'upstream': {'G': tensor(G)},
        'outputs': {'y': tensor(y)},
        'grads': {'x': tensor(xt.grad), 'gamma': tensor(m.weight.grad), 'beta': tensor(m.bias.grad)},
    }
    if op == 'train':
        M = x.size // C
        mean = x.mean(axis=axes)
        shape = [1, C] + [1] * (x.ndim - 2)
        var_b = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
        var_u = var_b * M / (M - 1)
        x_hat = (x - mean.reshape(shape)) / np.sqrt(var_b.reshape(shape) + eps)
        close(m.running_mean, (1 - momentum) * rm + momentum * mean, 'running_mean')
        close(m.running_var, (1 - momentum) * rv + momentum * var_u, 'running_var')
        close(y.detach(), gamma.reshape(shape) * x_hat + beta.reshape(shape), 'y')
        assert int(m.num_batches_tracked) == 1
        case['outputs'].update({
            'batch_mean': tensor(mean), 'batch_var_biased': tensor(var_b), 'batch_var_unbiased': tensor(var_u),
            'x_hat': tensor(x_hat),
            'running_mean_updated': tensor(m.running_mean), 'running_var_updated': tensor(m.running_var),
        })
    return case


def stats(C, given=True):
    if not given:
        return np.ones(C), np.zeros(C), np.zeros(C), np.ones(C)
    return uniform(0.5, 1.5, C), randn(C, scale=0.3), randn(C, scale=0.5), uniform(0.5, 2.0, C)


def edge_x():
    """[3, 4, 3, 4]: channel 0 constant, 1 large (scale 100, offset 50), 2 ties and zeros, 3 random."""
    x = randn(3, 4, 3, 4)
    x[:, 0] = 0.75
    x[:, 1] = randn(3, 3, 4, scale=100.0, offset=50.0)
    ties = np.array([0.0, 0.0, 1.0, -1.0, 0.5, 0.5, 0.0, 2.0, -1.0, 0.5, 0.0, 1.0])
    x[:, 2] = np.tile(ties, 3).reshape(3, 3, 4)
    return x


def op_cases():
    cases = [
        op_case('train: random x [4, 3, 5, 6] (scale 2, offset 1), random gamma/beta, running stats given',
                'train', randn(4, 3, 5, 6, scale=2.0, offset=1.0), *stats(3)),
        op_case('train: one channel, x [6, 1, 7, 7] (a grey image)', 'train', randn(6, 1, 7, 7, scale=0.5, offset=0.3), *stats(1)),
        op_case('train: many channels, x [2, 32, 3, 3]', 'train', randn(2, 32, 3, 3, scale=1.5, offset=-0.5), *stats(32)),
        op_case('train edge: x [3, 4, 3, 4], channel 0 constant (variance 0), channel 1 large (scale 100, offset 50), '
                'channel 2 ties and zeros; gamma 1, beta 0, running stats 0/1', 'train', edge_x(), *stats(4, given=False)),
        op_case('train: one sample, x [1, 5, 3, 3] (statistics over H x W alone)', 'train', randn(1, 5, 3, 3), *stats(5)),
        op_case('train: 1x1 images, x [5, 4, 1, 1] (as BatchNorm1d), momentum 0.3, eps 1e-3',
                'train', randn(5, 4, 1, 1, scale=2.0), *stats(4), eps=1e-3, momentum=0.3),
        op_case('train: BatchNorm1d on x [2, 3, 8] (N, C, L): per channel over N and L', 'train', randn(2, 3, 8, offset=0.5), *stats(3)),
        op_case('eval: random x [3, 4, 5, 5], running stats given', 'eval', randn(3, 4, 5, 5, scale=2.0), *stats(4)),
        op_case('eval: one channel, x [4, 1, 6, 6]', 'eval', randn(4, 1, 6, 6), *stats(1)),
    ]
    # Eval edge: running_var = 0 exactly in channel 0 (normalized by 1/sqrt(eps)).
    g, b, rm, rv = stats(3)
    rv[0] = 0.0
    cases.append(op_case('eval edge: x [2, 3, 4, 4], running_var 0 in channel 0', 'eval', randn(2, 3, 4, 4), g, b, rm, rv))
    return cases


# ---------------------------------------------------------------- trajectories

def cnn_forward(p, x, K, eps, running, momentum):
    """The logits of each micro-shard and its size; the running statistics move in place (ghost batch norm)."""
    logits, sizes, means, varus = [], [], [], []
    for xs in np.array_split(np.arange(x.shape[0]), K):
        h = F.conv2d(x[xs], p['conv_W'], p.get('conv_b'))
        d = h.detach()
        means.append(d.mean(dim=(0, 2, 3)))
        varus.append(d.var(dim=(0, 2, 3), unbiased=True))
        sizes.append(len(xs))
        h = F.batch_norm(h, None, None, p['bn_gamma'], p['bn_beta'], training=True, eps=eps)
        h = F.max_pool2d(F.relu(h), 2)
        logits.append(h.flatten(1) @ p['fc_W'].T + p['fc_b'])
    n = sum(sizes)
    with torch.no_grad():
        running['bn_running_mean'].mul_(1 - momentum).add_(momentum * sum(s * m for s, m in zip(sizes, means)) / n)
        running['bn_running_var'].mul_(1 - momentum).add_(momentum * sum(s * v for s, v in zip(sizes, varus)) / n)
    return logits, sizes


def eval_logits(p, x, eps):
    h = F.conv2d(x, p['conv_W'], p.get('conv_b'))
    h = F.batch_norm(h, p['bn_running_mean'], p['bn_running_var'], p['bn_gamma'], p['bn_beta'], training=False, eps=eps)
    return F.max_pool2d(F.relu(h), 2).flatten(1) @ p['fc_W'].T + p['fc_b']


BUFFERS = ['bn_running_mean', 'bn_running_var']


def trainable(init):
    return [k for k in init if k not in BUFFERS]


def run_trajectory(init, X, y, batches, cfg, dtype):
    p = {k: torch.tensor(v, dtype=dtype) for k, v in init.items()}
    TRAINABLE = trainable(init)
    for k in TRAINABLE:
        p[k].requires_grad_(True)
    running = {k: p[k] for k in BUFFERS}
    params = [p[k] for k in TRAINABLE]
    if cfg['optimizer'] == 'sgd':
        opt = torch.optim.SGD(params, lr=cfg['lr'], momentum=cfg['momentum'])
    else:
        opt = torch.optim.Adam(params, lr=cfg['lr'], betas=tuple(cfg['betas']), eps=cfg['eps'])
    Xt, yt = torch.tensor(X, dtype=dtype), torch.tensor(y)
    losses, grads1, after1 = [], None, None
    for step in range(cfg['steps']):
        idx = batches[step]
        opt.zero_grad()
        logits, sizes = cnn_forward(p, Xt[idx], cfg['workers'], cfg['bn_eps'], running, cfg['bn_momentum'])
        n = sum(sizes)
        at = 0
        loss = 0
        for lg, s in zip(logits, sizes):
            loss = loss + (s / n) * F.cross_entropy(lg, yt[idx][at:at + s])
            at += s
        loss.backward()
        losses.append(float(loss))
        if step == 0:
            grads1 = {k: p[k].grad.detach().clone() for k in TRAINABLE}
        opt.step()
        if step == 0:
            after1 = {k: p[k].detach().clone() for k in TRAINABLE + BUFFERS}
    with torch.no_grad():
        full = eval_logits(p, Xt, cfg['bn_eps'])
    return p, losses, grads1, after1, full


def module_check(init, X, y, batches, cfg):
    """K = 1: the same steps through nn.Conv2d / nn.BatchNorm2d / nn.Linear modules give the same trajectory."""
    conv = nn.Conv2d(cfg['input'][0], cfg['filters'], cfg['kernel'])
    bn = nn.BatchNorm2d(cfg['filters'], eps=cfg['bn_eps'], momentum=cfg['bn_momentum'])
    fc = nn.Linear(cfg['features'], cfg['classes'])
    net = nn.Sequential(conv, bn, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), fc)
    with torch.no_grad():
        for mod, names in ((conv, ['conv_W', 'conv_b']), (fc, ['fc_W', 'fc_b'])):
            mod.weight.copy_(t(init[names[0]]))
            mod.bias.copy_(t(init[names[1]]))
        bn.weight.copy_(t(init['bn_gamma']))
        bn.bias.copy_(t(init['bn_beta']))
        bn.running_mean.copy_(t(init['bn_running_mean']))
        bn.running_var.copy_(t(init['bn_running_var']))
    opt = torch.optim.SGD(net.parameters(), lr=cfg['lr'], momentum=cfg['momentum'])
    Xt, yt = t(X), torch.tensor(y)
    for step in range(cfg['steps']):
        idx = batches[step]
        opt.zero_grad()
        F.cross_entropy(net(Xt[idx]), yt[idx]).backward()
        opt.step()
    return {'bn_running_mean': bn.running_mean, 'bn_running_var': bn.running_var, 'conv_W': conv.weight, 'fc_W': fc.weight}


def trajectory_case(label, cfg, data):
    X, y, batches = data
    C, H, W = cfg['input']
    k = cfg['kernel']
    O = cfg['filters']
    cfg['features'] = O * ((H - k + 1) // 2) * ((W - k + 1) // 2)
    fan = C * k * k
    init = {
        'conv_W': uniform(-1 / np.sqrt(fan), 1 / np.sqrt(fan), O, C, k, k),
        **({'conv_b': uniform(-1 / np.sqrt(fan), 1 / np.sqrt(fan), O)} if cfg['conv_bias'] else {}),
        'bn_gamma': uniform(0.8, 1.2, O), 'bn_beta': randn(O, scale=0.1),
        'bn_running_mean': np.zeros(O), 'bn_running_var': np.ones(O),
        'fc_W': uniform(-1 / np.sqrt(cfg['features']), 1 / np.sqrt(cfg['features']), cfg['classes'], cfg['features']),
        'fc_b': uniform(-0.1, 0.1, cfg['classes']),
    }
    p, losses, grads1, after1, full = run_trajectory(init, X, y, batches, cfg, torch.float64)
    if cfg['workers'] == 1 and cfg['optimizer'] == 'sgd':
        ref = module_check(init, X, y, batches, cfg)
        for key, v in ref.items():
            close(v.detach(), p[key].detach(), f'module check {key}')
    p32, losses32, _, _, _ = run_trajectory(init, X, y, batches, cfg, torch.float32)
    TRAINABLE = trainable(init)
    outputs = {'losses': tensor(np.array(losses))}
    for key in TRAINABLE + BUFFERS:
        outputs[f'final_{key}'] = tensor(p[key])
    for key in TRAINABLE + BUFFERS:
        outputs[f'params_after_step1_{key}'] = tensor(after1[key])
    pred = full.argmax(dim=1).numpy()
    outputs.update({
        'full_logits': tensor(full),
        'full_loss': tensor(np.array(float(F.cross_entropy(full, torch.tensor(y))))),
        'full_accuracy': tensor(np.array(float((pred == y).mean()))),
    })
    dev_loss = max(abs(a - b) / abs(a) for a, b in zip(losses, losses32))
    dev_param = max(float((p[k].detach() - p32[k].detach().double()).abs().max()) for k in TRAINABLE + BUFFERS)
    return {
        'label': label, 'op': 'trajectory', 'config': cfg,
        'inputs': {'X': tensor(X), 'y': tensor(y, 'int64'), 'batches': tensor(batches, 'int64')},
        'params': {k: tensor(v) for k, v in init.items()},
        'outputs': outputs,
        'grads': {k: tensor(v) for k, v in grads1.items()},
        'diagnostics': {
            'float32_torch_max_rel_loss_dev': dev_loss,
            'float32_torch_max_abs_final_param_dev': dev_param,
            'note': 'the same trajectory re-run by PyTorch in float32 deviates from the float64 reference by these amounts',
        },
    }


def trajectory_data(num, steps, batch, input_shape, classes):
    X = randn(num, *input_shape, scale=1.0)
    y = rng.integers(0, classes, num)
    # Make the classes learnable: shift each class's images by its own pattern.
    pattern = randn(classes, *input_shape, scale=0.8)
    X = f32(X + pattern[y])
    per_epoch = num // batch
    rows = []
    while len(rows) < steps:
        perm = rng.permutation(num)
        rows.extend(perm[i * batch:(i + 1) * batch] for i in range(per_epoch))
    return X, y, np.array(rows[:steps])


def trajectory_cases():
    data = trajectory_data(40, 15, 8, [2, 6, 6], 3)
    common = {'steps': 15, 'batch_size': 8, 'num_samples': 40, 'input': [2, 6, 6], 'filters': 4, 'kernel': 3, 'pool': 2,
              'classes': 3, 'bn_momentum': 0.1, 'bn_eps': 1e-5, 'conv_bias': True}
    return [
        trajectory_case('SGD momentum 0.9, lr 0.05: conv 4@3x3, BatchNorm2d, relu, max pool 2, dense 3; one shard (PyTorch\'s BatchNorm2d)',
                        {'optimizer': 'sgd', 'lr': 0.05, 'momentum': 0.9, 'workers': 1, **common}, data),
        # NOTE: without the conv bias: its exact gradient through the batch norm is 0, and Adam would
        # scale the rounding noise (1e-17 in float64, 1e-9 in float32) into full-size steps.
        trajectory_case('Adam lr 0.01, the CNN without a conv bias, ghost batch norm: 2 micro-shards of 4, bn momentum 0.2',
                        {'optimizer': 'adam', 'lr': 0.01, 'betas': [0.9, 0.999], 'eps': 1e-8, 'weight_decay': 0.0, 'workers': 2,
                         **common, 'bn_momentum': 0.2, 'conv_bias': False}, data),
        trajectory_case('SGD lr 0.1, ghost batch norm over 3 uneven micro-shards [3, 3, 2]',
                        {'optimizer': 'sgd', 'lr': 0.1, 'momentum': 0.0, 'workers': 3, **common}, data),
    ]


def main():
    fixture = {
        'name': 'batchnorm2d',
        'description': 'BatchNorm2d (and BatchNorm1d on [N, C, L]) per channel in training and eval mode, and SGD/Adam '
                       'trajectories of a small CNN with BatchNorm2d, one shard and ghost batch norm over micro-shards.',
        'conventions': {
            'tensor_format': "{shape:[...], dtype:'float64'|'int64', data:[...]} with data = row-major (C-order, last index "
                             'fastest) flattening; shape [] means a scalar with data of length 1',
            'inputs_are_float32_exact': 'all inputs, params and upstream gradients are float32-representable numbers '
                                        '(computations in float64)',
            'layout': 'x [N, C, H, W] (or [N, C, L]); statistics per channel c over the M = N*H*W (N*L) values x[:, c]; '
                      'gamma, beta, running_mean, running_var [C]',
            'train_forward': 'mean = (1/M) sum x[:, c]; var_biased = (1/M) sum (x[:, c] - mean)^2; x_hat = (x - mean)/sqrt('
                             'var_biased + eps); y = gamma * x_hat + beta',
            'running_update': 'running_mean_updated = (1 - momentum) running_mean + momentum mean; running_var_updated = '
                              '(1 - momentum) running_var + momentum var_unbiased, var_unbiased = M/(M-1) var_biased',
            'eval_forward': 'y = gamma * (x - running_mean)/sqrt(running_var + eps) + beta',
            'upstream': 'loss = sum(y * G); grads.x, grads.gamma, grads.beta = d loss / d (x, gamma, beta)',
            'trajectory_model': 'logits = flatten(maxpool2x2(relu(bn(conv2d(X, conv_W, conv_b))))) @ fc_W^T + fc_b, conv valid '
                                'stride 1, flatten in NCHW order, bn in training mode at every step; bn_momentum, bn_eps',
            'ghost_batch_norm': 'config.workers = K: the minibatch is cut into K contiguous micro-shards (numpy.array_split); '
                                'each normalizes with its own batch statistics; loss = sum_k (n_k/n) mean CE over shard k; '
                                'running stats: s = (1 - bn_momentum) s + bn_momentum sum_k (n_k/n) stat_k (unbiased variance '
                                'per shard)',
            'trajectory_outputs': 'as the SGD files: losses [steps] before each update, params_after_step1_*, final_* (running '
                                  'statistics included), full_* = the final model in eval mode on all samples, grads.* of the '
                                  'first step',
        },
        'generator': {'seed': SEED, 'torch_version': torch.__version__, 'numpy_version': np.__version__,
                      'compute_dtype': 'float64', 'script': 'scripts/gen_batchnorm2d_fixture.py'},
        'cases': op_cases() + trajectory_cases(),
    }
    with open(OUT, 'w') as f:
        json.dump(fixture, f, separators=(',', ':'))
        f.write('\n')
    print(f'{OUT}: {len(fixture["cases"])} cases')


if __name__ == '__main__':
    main()
