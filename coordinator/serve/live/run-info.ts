// The config as the dashboard shows it: a few readable lines (the model
// layer by layer, the optimizer, the batch), never the token.
import { basename } from 'node:path';
import type { LayerSpec } from '../../../src/model/spec.js';
import { isAdam } from '../../../src/optim/optimizer.js';
import { microShardsOf, type TrainConfig } from '../../run/config.js';
import type { RunInfo } from './status-types.js';

/** "3x3" or "3" for a [h, w] pair or a number: the square case in one number. */
function pairText(v: number | readonly [number, number]): string {
  return typeof v === 'number' ? `${v}x${v}` : `${v[0]}x${v[1]}`;
}

/** " relu", or nothing for a linear activation. */
function activationText(act: string | undefined): string {
  return act === undefined || act === 'linear' ? '' : ` ${act}`;
}

/** "dense 128 relu", "dropout 0.2", "lstm 128 (sequences)", "conv2d 8@5x5 relu", "maxpool2d 2x2". */
export function describeLayer(layer: LayerSpec): string {
  switch (layer.type) {
    case 'dense':
      return `dense ${layer.units}${activationText(layer.activation)}`;
    case 'conv2d': {
      const extra: string[] = [];
      if (layer.stride !== undefined && layer.stride !== 1) extra.push(`stride ${pairText(layer.stride)}`);
      if (layer.padding !== undefined && layer.padding !== 'valid' && layer.padding !== 0) {
        extra.push(`padding ${typeof layer.padding === 'string' ? layer.padding : pairText(layer.padding)}`);
      }
      if (layer.dilation !== undefined && layer.dilation !== 1) extra.push(`dilation ${pairText(layer.dilation)}`);
      return `conv2d ${layer.filters}@${pairText(layer.kernelSize)}${extra.map((e) => `, ${e}`).join('')}${activationText(layer.activation)}`;
    }
    case 'maxpool2d':
    case 'avgpool2d': {
      const stride = layer.stride === undefined ? '' : ` stride ${pairText(layer.stride)}`;
      return `${layer.type} ${pairText(layer.poolSize)}${stride}`;
    }
    case 'dropout':
      return `dropout ${layer.rate}`;
    case 'lstm':
    case 'gru':
      return `${layer.type} ${layer.units}${layer.returnSequences === true ? ' (sequences)' : ''}`;
    case 'reshape':
      return `reshape [${layer.shape.join(', ')}]`;
    default:
      return layer.type;
  }
}

export function describeOptimizer(config: TrainConfig): string {
  const o = config.optimizer;
  const parts: string[] = [];
  if (isAdam(o)) {
    parts.push(`${o.type === 'adam' ? 'Adam' : 'AdamW'} lr ${o.lr}`, `betas ${o.betas[0]}, ${o.betas[1]}`);
    if (o.eps !== 1e-8) parts.push(`eps ${o.eps}`);
  } else {
    parts.push(`SGD lr ${o.lr}`);
    if (o.momentum > 0) parts.push(`momentum ${o.momentum}${o.nesterov ? ' (Nesterov)' : ''}`);
  }
  if (o.weightDecay > 0) parts.push(`weight decay ${o.weightDecay}`);
  if (config.schedule.type !== 'constant') parts.push(`${config.schedule.type} schedule`);
  if (config.warmupSteps > 0) parts.push(`${config.warmupSteps} warm-up steps`);
  return parts.join(', ');
}

export function runInfo(config: TrainConfig, configFile: string, extra: { kernels: string; verifyFraction: number; tokenRequired: boolean }): RunInfo {
  return {
    name: basename(configFile),
    ...(config.description === undefined ? {} : { description: config.description }),
    layers: [`input [${config.model.inputShape.join(', ')}]`, ...config.model.layers.map(describeLayer)],
    params: 0,
    loss: config.loss,
    optimizer: describeOptimizer(config),
    batchSize: config.batchSize,
    microShards: microShardsOf(config),
    epochs: config.epochs,
    seed: config.seed,
    ...extra,
  };
}
