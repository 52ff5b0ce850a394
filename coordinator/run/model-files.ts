// Model files on disk: the native model file (src/model/save.ts), the
// PyTorch-style safetensors export and the TensorFlow.js layers-format
// folder. Every file is written atomically (output-paths.ts: temporary file,
// fsync, rename), so a crash leaves the old file or the new one, never half
// of one, and a failure is one DPT_ERR_OUTPUT naming the path.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DptrainError, dptError } from '../../src/errors.js';
import type { Model } from '../../src/model/model.js';
import type { InferenceInfo } from '../../src/model/inference-info.js';
import { loadModel, saveModel, type LoadedModel } from '../../src/model/save.js';
import type { ExportInfo } from '../../src/model/export-info.js';
import { exportSafetensorsTorch, type TorchExportOptions } from '../../src/model/torch-export.js';
import { exportTfjs, TFJS_MODEL_FILE, TFJS_WEIGHTS_FILE } from '../../src/model/tfjs-export.js';
import { ensureFolder, writeOutputFile } from './output-paths.js';

/** Writes the native model file (weights, statistics, spec, extras and what inference needs). */
export function saveModelFile(file: string, model: Model, extras: Record<string, string> = {}, inference?: InferenceInfo): void {
  writeOutputFile(file, saveModel(model, extras, inference), 'the model file');
}

/** Reads a native model file; errors are DPT_ERR_MODEL_FILE and name the file. */
export function loadModelFile(file: string): LoadedModel {
  return decodeModelFile(file, readModelBytes(file), loadModel);
}

/**
 * Decodes the bytes of `file` with `decode`, refusing what is not a model
 * file before its bytes are parsed; errors name the file.
 */
export function decodeModelFile<T>(file: string, bytes: Uint8Array, decode: (bytes: Uint8Array) => T): T {
  if (!startsLikeSafetensors(bytes)) {
    throw dptError('DPT_ERR_MODEL_FILE', `${file}: not a dptrain model file (train writes one as model.dptmodel in its run folder)`);
  }
  try {
    return decode(bytes);
  } catch (e) {
    if (e instanceof DptrainError) throw dptError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}

/** The bytes of a model file; a missing file or a folder is DPT_ERR_MODEL_FILE. */
export function readModelBytes(file: string): Uint8Array {
  let isFolder: boolean;
  try {
    isFolder = statSync(file).isDirectory();
  } catch {
    throw dptError('DPT_ERR_MODEL_FILE', `${file}: no such model file`);
  }
  if (isFolder) throw dptError('DPT_ERR_MODEL_FILE', `${file}: is a folder; give the model file, e.g. ${join(file, 'model.dptmodel')}`);
  try {
    return new Uint8Array(readFileSync(file));
  } catch (err) {
    throw dptError('DPT_ERR_MODEL_FILE', `${file}: cannot read the model file (${(err as Error).message})`);
  }
}

/**
 * A safetensors container (what model.dptmodel is) starts with the length of
 * its JSON header (8 bytes, little-endian), then the header, `{...}`; any
 * other file is refused as "not a model file" before its bytes are parsed
 * as lengths.
 */
function startsLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.byteLength < 10) return false;
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  return headerLength >= 2n && headerLength <= BigInt(bytes.byteLength - 8) && bytes[8] === 0x7b; // '{'
}

/** Writes the PyTorch-style state_dict safetensors file (with the scaling, names and step count `options` give). */
export function writeTorchSafetensors(file: string, model: Model, options: TorchExportOptions = {}): void {
  writeOutputFile(file, exportSafetensorsTorch(model, options), 'the safetensors export');
}

/**
 * Writes `<dir>/model.json` and `<dir>/weights.bin` (creating dir). The
 * weights go first, so a model.json on disk never points at missing weights.
 */
export function writeTfjsModel(dir: string, model: Model, info?: ExportInfo): { modelJsonFile: string; weightsFile: string } {
  ensureFolder(dir, 'the TF.js model folder');
  const { modelJson, weightsBin } = exportTfjs(model, info);
  const weightsFile = join(dir, TFJS_WEIGHTS_FILE);
  const modelJsonFile = join(dir, TFJS_MODEL_FILE);
  writeOutputFile(weightsFile, weightsBin, 'the TF.js weights');
  writeOutputFile(modelJsonFile, new TextEncoder().encode(`${JSON.stringify(modelJson, null, 1)}\n`), 'the TF.js model.json');
  return { modelJsonFile, weightsFile };
}
