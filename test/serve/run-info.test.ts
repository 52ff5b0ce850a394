// The dashboard's model and optimizer lines (coordinator/serve/live/run-info.ts).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../coordinator/run/config.js';
import { describeLayer, describeOptimizer } from '../../coordinator/serve/live/run-info.js';
import { ROOT } from '../helpers/cli.js';

describe('run info lines', () => {
  it('convolution and pooling layers: filters@window, stride, padding, dilation, activation', () => {
    expect(describeLayer({ type: 'conv2d', filters: 32, kernelSize: 5, activation: 'relu' })).toBe('conv2d 32@5x5 relu');
    expect(describeLayer({ type: 'conv2d', filters: 8, kernelSize: [3, 2], stride: 2, padding: 'same', dilation: [1, 2] }))
      .toBe('conv2d 8@3x2, stride 2x2, padding same, dilation 1x2');
    expect(describeLayer({ type: 'conv2d', filters: 4, kernelSize: 3, padding: [1, 0] })).toBe('conv2d 4@3x3, padding 1x0');
    expect(describeLayer({ type: 'maxpool2d', poolSize: 2 })).toBe('maxpool2d 2x2');
    expect(describeLayer({ type: 'avgpool2d', poolSize: [3, 3], stride: 1 })).toBe('avgpool2d 3x3 stride 1x1');
  });

  it('the optimizer: SGD as before, Adam and AdamW with their betas and decay', () => {
    const base = JSON.parse(readFileSync(`${ROOT}examples/mnist-cnn.json`, 'utf8')) as Record<string, unknown>;
    expect(describeOptimizer(parseConfig(base, 'x'))).toBe('Adam lr 0.001, betas 0.9, 0.999');
    expect(describeOptimizer(parseConfig({ ...base, optimizer: { type: 'adamw', lr: 0.002, eps: 1e-6 } }, 'x')))
      .toBe('AdamW lr 0.002, betas 0.9, 0.999, eps 0.000001, weight decay 0.01');
    expect(describeOptimizer(parseConfig({ ...base, optimizer: { lr: 0.1, momentum: 0.9, nesterov: true } }, 'x')))
      .toBe('SGD lr 0.1, momentum 0.9 (Nesterov)');
  });
});
