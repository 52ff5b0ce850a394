// The config as the dashboard shows it: a few readable lines (the model
// layer by layer, the optimizer, the batch), never the token.
import { basename } from 'node:path';
import type { LayerSpec } from '../../../src/model/spec.js';
import { microShardsOf, type TrainConfig } from '../../run/config.js';
import type { RunInfo } from './status-types.js';

/** "dense 128 relu", "dropout 0.2", "lstm 128 (sequences)". */
export function describeLayer(layer: LayerSpec): string {
  switch (layer.type) {
    case 'dense':
      return `dense ${layer.units}${layer.activation === undefined || layer.activation === 'linear' ? '' : ` ${layer.activation}`}`;
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
  const parts = [`SGD lr ${o.lr}`];
  if ((o.momentum ?? 0) > 0) parts.push(`momentum ${o.momentum}${o.nesterov === true ? ' (Nesterov)' : ''}`);
  if ((o.weightDecay ?? 0) > 0) parts.push(`weight decay ${o.weightDecay}`);
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
