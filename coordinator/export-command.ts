// `dptrain export MODEL --format torch|tfjs --out PATH`: a trained model file
// (model.dptmodel of a run folder) to the formats other tools load.
//   torch: one .safetensors file, names and shapes of the equivalent
//          nn.Sequential (Linear.weight [out, in], LSTM weight_ih_l0, ...)
//   tfjs:  a folder with model.json + weights.bin for tf.loadLayersModel
import { mkdirSync } from 'node:fs';
import { dptError } from '../src/errors.js';
import { loadModelFile, writeTfjsModel, writeTorchSafetensors } from './model-files.js';

export const EXPORT_FORMATS = ['torch', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export function exportModelFile(modelFile: string, format: string, out: string): string[] {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw dptError('DPT_ERR_USAGE', `--format must be one of ${EXPORT_FORMATS.join(', ')}, got "${format}"`);
  }
  const { model } = loadModelFile(modelFile);
  if (format === 'torch') {
    writeTorchSafetensors(out, model);
    return [out];
  }
  mkdirSync(out, { recursive: true });
  const { modelJsonFile, weightsFile } = writeTfjsModel(out, model);
  return [modelJsonFile, weightsFile];
}
