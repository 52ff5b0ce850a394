// Models on disk for the library in Node: a model file (model.dptmodel, what
// `dptrain train` writes) to a model and back. Errors name the file:
// DPT_ERR_MODEL_FILE for what cannot be read as a model, DPT_ERR_OUTPUT for
// a path that cannot be written (written atomically, never half a file).
import { createModel as createModelInCore, loadModel, type CreateModelOptions, type DptrainModel, type ModelSpecInput } from '../../src/api/model.js';
import { decodeModelFile, readModelBytes } from '../run/model-files.js';
import { checkOutputFile, writeOutputFile } from '../run/output-paths.js';
import { ensureKernels } from './kernels.js';

/** A new model from a spec (see dptrain/core), built with this process's kernels. */
export function createModel(spec: ModelSpecInput, options: CreateModelOptions): DptrainModel {
  ensureKernels();
  return createModelInCore(spec, options);
}

/** Reads a model file. */
export function loadModelFile(file: string): DptrainModel {
  ensureKernels();
  return decodeModelFile(file, readModelBytes(file), loadModel);
}

/** Writes a model file (replacing one that is there). */
export function saveModelFile(file: string, model: DptrainModel): void {
  checkOutputFile(file, 'the model file');
  writeOutputFile(file, model.toBytes(), 'the model file');
}
