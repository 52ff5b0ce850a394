// The model of the public API (`dptrain/core`, re-exported by `dptrain`):
// built from a spec or loaded from model-file bytes, it predicts, evaluates
// and serializes itself, applying the scaling and naming the classes stored
// with it (src/model/inference-info.ts). Browser-safe: no Node imports.
//
// The TypeScript types of the options are inferred from their zod schemas;
// a bad spec fails with the CLI's DPT_ERR_MODEL_SPEC / DPT_ERR_SHAPE
// messages (`model.layers[1].units: expected a positive integer`).
import * as z from 'zod';
import { formatZodError, plainIssueMessage } from '../check/zod-format.js';
import type { Dataset } from '../data/dataset.js';
import { validateDataset } from '../data/dataset.js';
import { dptError } from '../errors.js';
import { inputMatrix, type PredictInput } from '../infer/input.js';
import { outputKindOf, type OutputKind } from '../infer/outputs.js';
import { DEFAULT_PREDICT_BATCH, forwardInBatches, predictionOf, type Prediction } from '../infer/predict.js';
import { getLoss, isLossName, LOSS_NAMES, type LossName } from '../losses/index.js';
import { checkUniqueNames, inferenceFields, inferenceInfoProblem, type InferenceInfo, type InputScaling } from '../model/inference-info.js';
import { buildModel, initModel, type Model } from '../model/model.js';
import { loadModel as decodeModel, saveModel } from '../model/save.js';
import { ModelSpec } from '../model/spec.js';
import { evaluate, type Evaluation } from '../train/evaluate.js';

/** The model spec as written in a config (`{ inputShape, layers }`). */
export type ModelSpecInput = z.input<typeof ModelSpec>;

export const CreateModelOptions = z.strictObject({
  /** The loss it is (or will be) trained with: it says what the outputs mean (logits, probabilities, values). */
  loss: z.enum(LOSS_NAMES),
  /** Seeds the initial weights, as a config's `seed` does (default 1). */
  seed: z.number().int().nonnegative().default(1),
  ...inferenceFields,
}).superRefine(checkUniqueNames);

export const PredictOptions = z.strictObject({
  /** Rows per forward pass (default 1000); never changes a result. */
  batchSize: z.number().int().positive().default(DEFAULT_PREDICT_BATCH),
  /** Apply the model's stored input scaling (default true); false: the inputs are already scaled. */
  scaleInput: z.boolean().default(true),
});

export type CreateModelOptions = z.input<typeof CreateModelOptions>;
export type PredictOptions = z.input<typeof PredictOptions>;
/** Targets for evaluate: class ids or class names (classification), or n * outputSize numbers (regression). */
export type Targets = ArrayLike<number> | readonly string[];

export interface DptrainModel {
  readonly spec: ModelSpec;
  readonly loss: LossName;
  /** Per-sample input shape and its number of values. */
  readonly inputShape: readonly number[];
  readonly inputSize: number;
  readonly outputSize: number;
  readonly task: 'classification' | 'regression';
  /** Classes the model chooses between (classification), else 0. */
  readonly numClasses: number;
  /** The input columns by name, in model order (models trained on CSV), or null. */
  readonly featureNames: readonly string[] | null;
  /** The scaling applied to raw inputs before the model sees them, or null. */
  readonly scaling: InputScaling | null;
  /** The name of each class id, or null (ids stand for themselves). */
  readonly classNames: readonly string[] | null;
  /** Trainable parameters plus statistics (BatchNorm running mean and variance). */
  readonly parameterCount: number;
  /** Predicts n samples: probabilities and classes (classification) or values (regression). */
  predict(input: PredictInput, options?: PredictOptions): Prediction;
  /** Loss (and accuracy, macro-F1, confusion for class ids) over n samples and their targets. */
  evaluate(input: PredictInput, targets: Targets, options?: PredictOptions): Evaluation;
  /** The model file (model.dptmodel): spec, weights, loss and what inference needs. */
  toBytes(): Uint8Array;
}

function optionsError(error: z.ZodError, where: string): never {
  throw dptError('DPT_ERR_CONFIG', formatZodError(error, where));
}

function parsePredictOptions(options: PredictOptions | undefined): z.output<typeof PredictOptions> {
  const r = PredictOptions.safeParse(options ?? {}, { error: plainIssueMessage });
  if (!r.success) optionsError(r.error, 'predict options');
  return r.data;
}

/** The class ids of classification targets (ids or names), as floats. */
function classTargets(targets: Targets, n: number, classNames: readonly string[] | null): Float32Array {
  if (targets.length !== n) throw dptError('DPT_ERR_SHAPE', `evaluate: ${targets.length} targets for ${n} samples`);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = targets[i];
    if (typeof t === 'string') {
      const id = classNames === null ? (/^\d+$/.test(t) ? Number(t) : -1) : classNames.indexOf(t);
      if (id < 0) throw dptError('DPT_ERR_DATASET', `evaluate: target ${i} is "${t}", not a class of the model${classNames === null ? '' : ` (${classNames.join(', ')})`}`);
      y[i] = id;
    } else {
      y[i] = t;
    }
  }
  return y;
}

/** Why info does not fit the model trained with loss, or null. */
function infoProblem(model: Model, loss: LossName, info: InferenceInfo): string | null {
  const kind = outputKindOf(loss, model.outSize);
  return inferenceInfoProblem(info, model.inSize, kind.task === 'classification' ? kind.numClasses : null);
}

function wrap(model: Model, loss: LossName, info: InferenceInfo): DptrainModel {
  const kind: OutputKind = outputKindOf(loss, model.outSize);
  const numClasses = kind.task === 'classification' ? kind.numClasses : 0;
  const featureNames = info.featureNames ?? null;
  const classNames = info.classNames ?? null;
  const scaling = info.scaling ?? null;
  const matrix = (input: PredictInput, scaleInput: boolean) =>
    inputMatrix(input, { inputSize: model.inSize, featureNames, scaling: scaleInput ? scaling : null });
  return {
    spec: model.spec, loss, inputShape: model.inShape, inputSize: model.inSize, outputSize: model.outSize,
    task: kind.task, numClasses, featureNames, scaling, classNames, parameterCount: model.size,
    predict(input, options) {
      const o = parsePredictOptions(options);
      const { x, n } = matrix(input, o.scaleInput);
      return predictionOf(kind, forwardInBatches(model, x, n, o.batchSize), n, model.outSize, classNames);
    },
    evaluate(input, targets, options) {
      const o = parsePredictOptions(options);
      const { x, n } = matrix(input, o.scaleInput);
      const lossFn = getLoss(loss);
      const classIds = lossFn.target === 'class';
      const ds: Dataset = {
        name: 'evaluate', x, n, xShape: [...model.inShape],
        y: classIds ? classTargets(targets, n, classNames) : Float32Array.from(targets as ArrayLike<number>),
        yShape: classIds ? [] : [lossFn.targetSize(model.outSize)],
      };
      if (classIds) ds.numClasses = model.outSize;
      validateDataset(ds);
      return evaluate(model, lossFn, ds, o.batchSize);
    },
    toBytes() {
      const saved: InferenceInfo = {};
      if (featureNames !== null) saved.featureNames = [...featureNames];
      if (scaling !== null) saved.scaling = scaling;
      if (classNames !== null) saved.classNames = [...classNames];
      return saveModel(model, { loss }, saved);
    },
  };
}

/**
 * A new model from a spec, its weights initialized from `seed` as training
 * initializes them. Build models after initKernels (their buffers then live
 * where the kernels use them in place).
 */
export function createModel(spec: ModelSpecInput, options: CreateModelOptions): DptrainModel {
  const r = CreateModelOptions.safeParse(options, { error: plainIssueMessage });
  if (!r.success) optionsError(r.error, 'options');
  const { loss, seed, ...info } = r.data;
  const model = buildModel(spec);
  const problem = infoProblem(model, loss, info);
  if (problem !== null) throw dptError('DPT_ERR_CONFIG', `options.${problem}`);
  initModel(model, seed);
  return wrap(model, loss, info);
}

/** A model from the bytes of a model file (what toBytes and `dptrain train` write). */
export function loadModel(bytes: Uint8Array | ArrayBuffer): DptrainModel {
  const loaded = decodeModel(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  const loss = loaded.extras.loss;
  if (loss === undefined || !isLossName(loss)) {
    throw dptError('DPT_ERR_MODEL_FILE', `model file: __metadata__.loss is ${JSON.stringify(loss)}; expected one of ${LOSS_NAMES.join(', ')} (it says what the outputs mean)`);
  }
  const info = loaded.inference ?? {};
  const problem = infoProblem(loaded.model, loss, info);
  if (problem !== null) throw dptError('DPT_ERR_MODEL_FILE', `model file: __metadata__.inference.${problem}`);
  return wrap(loaded.model, loss, info);
}
