// `dptrain export MODEL --format torch|tfjs --out PATH`: a trained model file
// (model.dptmodel of a run folder) to the formats other tools load.
//   torch: one .safetensors file, names and shapes of the equivalent
//          nn.Sequential (Linear.weight [out, in], LSTM weight_ih_l0, ...);
//          PATH is a file in a folder that exists
//   tfjs:  a folder with model.json + weights.bin for tf.loadLayersModel
//          (created if missing)
import { dptError } from '../../../src/errors.js';
import type { Model } from '../../../src/model/model.js';
import { loadModelFile, writeTfjsModel, writeTorchSafetensors } from '../../run/model-files.js';
import { checkOutputFile, ensureFolder } from '../../run/output-paths.js';

export const EXPORT_FORMATS = ['torch', 'tfjs'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Writes the export; returns the files written. `warn` gets one line per caveat of the result. */
export function exportModelFile(modelFile: string, format: string, out: string, warn: (line: string) => void = () => {}): string[] {
  if (!(EXPORT_FORMATS as readonly string[]).includes(format)) {
    throw dptError('DPT_ERR_USAGE', `--format must be one of ${EXPORT_FORMATS.join(', ')}, got "${format}"`);
  }
  const { model, extras, inference } = loadModelFile(modelFile);
  // The scaling, feature and class names and the loss travel with the weights (src/model/export-info.ts).
  const info = { inference, loss: extras.loss };
  if (format === 'torch') {
    checkOutputFile(out, 'the safetensors export');
    // BatchNorm's num_batches_tracked: the steps `dptrain train` wrote into the model file.
    const steps = extras.steps === undefined ? NaN : Number(extras.steps);
    writeTorchSafetensors(out, model, { ...info, ...(Number.isSafeInteger(steps) && steps >= 0 ? { batchesTracked: steps } : {}) });
    return [out];
  }
  ensureFolder(out, 'the TF.js model folder');
  if (hasGru(model)) {
    // See src/model/tfjs-export.ts: TF.js has no GRU with PyTorch's formula (reset_after).
    warn(`${modelFile} has a GRU layer: TensorFlow.js cannot load its GRU (reset_after); the files in ${out} load in Python Keras`);
  }
  const { modelJsonFile, weightsFile } = writeTfjsModel(out, model, info);
  return [modelJsonFile, weightsFile];
}

function hasGru(model: Model): boolean {
  return model.spec.layers.some((layer) => layer.type === 'gru');
}
