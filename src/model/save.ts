// The native model file: a safetensors container (safetensors.ts) holding
// every flat tensor of the model under its entryName (`layers.0.dense.W`,
// `layers.3.batchnorm.running_mean`, ...) in our own layouts, in flat-buffer
// order, so the data section is the flat parameter buffer byte for byte.
//
// __metadata__ (strings only, as safetensors requires):
//   format   "dptrain-model"
//   version  "1"
//   spec     the model spec as JSON
//   inference  what prediction needs (inference-info.ts: feature names, input
//            scaling, class names) as JSON; absent in older files
//   ...      caller's extras (loss name, training info), returned by loadModel
//
// loadModel rebuilds the model from the spec and copies the weights in; the
// result is bit-identical to the saved model. A file whose tensors do not
// match the spec (missing, extra, wrong shape) is refused with
// DPT_ERR_MODEL_FILE naming the tensor.
import { DptrainError, dptError, fmtShape } from '../errors.js';
import { parseInferenceInfo, type InferenceInfo } from './inference-info.js';
import { buildModel, entryName, parseModelSpec, type BuildOptions, type Model } from './model.js';
import { decodeSafetensors, encodeSafetensors, type F32Tensor } from './safetensors.js';

export const MODEL_FORMAT = 'dptrain-model';
export const MODEL_FORMAT_VERSION = '1';
/** Metadata keys written by saveModel itself; extras may not use them. */
export const RESERVED_METADATA_KEYS: readonly string[] = ['format', 'version', 'spec', 'inference'];

export interface LoadedModel {
  readonly model: Model;
  /** The caller's extras given to saveModel (metadata minus format, version, spec, inference). */
  readonly extras: Record<string, string>;
  /** What prediction needs, as saved; null in a file written without it. */
  readonly inference: InferenceInfo | null;
}

/** Encodes the model (weights and statistics buffers), its spec and, if given, what inference needs. */
export function saveModel(model: Model, extras: Record<string, string> = {}, inference?: InferenceInfo): Uint8Array {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(extras)) {
    if (RESERVED_METADATA_KEYS.includes(k)) throw new RangeError(`saveModel: extras.${k} is reserved; choose another key`);
    if (typeof v !== 'string') throw new RangeError(`saveModel: extras.${k} must be a string (safetensors metadata holds strings only)`);
    metadata[k] = v;
  }
  metadata.format = MODEL_FORMAT;
  metadata.version = MODEL_FORMAT_VERSION;
  metadata.spec = JSON.stringify(model.spec);
  if (inference !== undefined) metadata.inference = JSON.stringify(inference);
  const tensors: [string, F32Tensor][] = model.entries.map((e) => [
    entryName(e),
    { shape: e.shape, data: model.params.subarray(e.offset, e.offset + e.size) },
  ]);
  return encodeSafetensors(tensors, metadata);
}

function fail(message: string): never {
  throw dptError('DPT_ERR_MODEL_FILE', `model file: ${message}`);
}

/** Decodes a native model file, rebuilds the model and fills its weights. */
export function loadModel(bytes: Uint8Array, options: BuildOptions = {}): LoadedModel {
  const { tensors, ints, metadata } = decodeSafetensors(bytes);
  if (metadata.format !== MODEL_FORMAT) {
    fail(`__metadata__.format is ${JSON.stringify(metadata.format)}, expected "${MODEL_FORMAT}" (not a dptrain model file; ` +
      'a PyTorch-style export cannot be loaded back)');
  }
  if (metadata.version !== MODEL_FORMAT_VERSION) {
    fail(`__metadata__.version is ${JSON.stringify(metadata.version)}; this dptrain reads version ${MODEL_FORMAT_VERSION}`);
  }
  if (metadata.spec === undefined) fail('__metadata__.spec is missing');
  let specValue: unknown;
  try {
    specValue = JSON.parse(metadata.spec);
  } catch (e) {
    fail(`__metadata__.spec is not valid JSON: ${(e as Error).message}`);
  }
  let model: Model;
  try {
    model = buildModel(parseModelSpec(specValue, '__metadata__.spec'), options);
  } catch (e) {
    if (e instanceof DptrainError) fail(`the spec in __metadata__.spec is invalid: ${e.message}`);
    throw e;
  }

  // Check every tensor before writing any (options.params may be a live, shared buffer).
  const expected = new Set<string>();
  for (const e of model.entries) {
    const name = entryName(e);
    expected.add(name);
    const t = tensors.get(name);
    if (t === undefined) fail(`tensor "${name}" ${fmtShape(e.shape)} is missing`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      // NOTE: before batchnorm normalized an image [C, H, W] per channel, it normalized W.
      const hint = e.layerType === 'batchnorm' ? ' (a batchnorm of an image written before it normalized channels: its spec needs "axis": "last")' : '';
      fail(`tensor "${name}" has shape ${fmtShape(t.shape)}; the spec needs ${fmtShape(e.shape)}${hint}`);
    }
  }
  for (const name of [...tensors.keys(), ...ints.keys()]) {
    if (!expected.has(name)) fail(`tensor "${name}" is not part of the model the spec describes`);
  }
  for (const e of model.entries) model.params.set(tensors.get(entryName(e))!.data, e.offset);

  const extras: Record<string, string> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (!RESERVED_METADATA_KEYS.includes(k)) extras[k] = v;
  }
  return { model, extras, inference: metadata.inference === undefined ? null : inferenceOf(metadata.inference) };
}

function inferenceOf(json: string): InferenceInfo {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (e) {
    fail(`__metadata__.inference is not valid JSON: ${(e as Error).message}`);
  }
  try {
    return parseInferenceInfo(value, '__metadata__.inference');
  } catch (e) {
    if (e instanceof DptrainError) fail(e.message);
    throw e;
  }
}

/**
 * The tensors of one layer of model.layers (after activation expansion), by
 * parameter or statistic name, as views into model.params.
 */
export function layerTensors(model: Model, layerIndex: number): Map<string, F32Tensor> {
  const out = new Map<string, F32Tensor>();
  for (const e of model.entries) {
    if (e.layerIndex === layerIndex) out.set(e.name, { shape: e.shape, data: model.params.subarray(e.offset, e.offset + e.size) });
  }
  return out;
}
