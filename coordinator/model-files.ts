// Model files on disk: the native model file (src/model/save.ts), the
// PyTorch-style safetensors export and the TensorFlow.js layers-format
// folder. Every file is written atomically (temporary file, fsync, rename),
// so a crash leaves the old file or the new one, never half of one.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DptrainError, dptError } from '../src/errors.js';
import type { Model } from '../src/model/model.js';
import { loadModel, saveModel, type LoadedModel } from '../src/model/save.js';
import { exportSafetensorsTorch } from '../src/model/torch-export.js';
import { exportTfjs, TFJS_MODEL_FILE, TFJS_WEIGHTS_FILE } from '../src/model/tfjs-export.js';
import { writeFileAtomic } from './checkpoint.js';

/** Writes the native model file (weights, statistics, spec and extras). */
export function saveModelFile(file: string, model: Model, extras: Record<string, string> = {}): void {
  writeFileAtomic(file, saveModel(model, extras));
}

/** Reads a native model file; errors are DPT_ERR_MODEL_FILE and name the file. */
export function loadModelFile(file: string): LoadedModel {
  if (!existsSync(file)) throw dptError('DPT_ERR_MODEL_FILE', `${file}: no such model file`);
  const bytes = new Uint8Array(readFileSync(file));
  try {
    return loadModel(bytes);
  } catch (e) {
    if (e instanceof DptrainError) throw dptError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

/** Writes the PyTorch-style state_dict safetensors file. */
export function writeTorchSafetensors(file: string, model: Model): void {
  writeFileAtomic(file, exportSafetensorsTorch(model));
}

/**
 * Writes `<dir>/model.json` and `<dir>/weights.bin` (creating dir). The
 * weights go first, so a model.json on disk never points at missing weights.
 */
export function writeTfjsModel(dir: string, model: Model): { modelJsonFile: string; weightsFile: string } {
  mkdirSync(dir, { recursive: true });
  const { modelJson, weightsBin } = exportTfjs(model);
  const weightsFile = join(dir, TFJS_WEIGHTS_FILE);
  const modelJsonFile = join(dir, TFJS_MODEL_FILE);
  writeFileAtomic(weightsFile, weightsBin);
  writeFileAtomic(modelJsonFile, new TextEncoder().encode(`${JSON.stringify(modelJson, null, 1)}\n`));
  return { modelJsonFile, weightsFile };
}
