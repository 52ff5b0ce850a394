// What a model file keeps for inference besides the weights: how raw
// inputs become the numbers the model was trained on, and what its outputs
// are called. Training writes it (the CSV columns, their standardisation and
// the class names; MNIST's grey levels 0-255 scaled to [0, 1]); loading
// restores it and prediction applies it, so a user never redoes the scaling
// by hand and gets class names back, not ids.
//
// Stored as JSON in the model file's __metadata__ under `inference`
// (save.ts); every field is optional, and a file without it (written before
// this existed) predicts from already-scaled inputs with class ids as names.
import * as z from 'zod';
import { formatZodError, plainIssueMessage } from '../check/zod-format.js';
import { dptError } from '../errors.js';

const finite = z.number().refine(Number.isFinite, { error: 'must be a finite number' });

/**
 * x' = (x - mean[j]) / scale[j] for feature j, computed in float64 and then
 * rounded to float32 (as the CSV loader does). One value applies to every
 * feature; otherwise one per input value.
 */
export const InputScaling = z.strictObject({
  mean: z.array(finite).min(1),
  scale: z.array(finite.refine((v) => v !== 0, { error: 'must not be 0' })).min(1),
}).superRefine((s, ctx) => {
  if (s.mean.length !== s.scale.length) {
    ctx.addIssue({ code: 'custom', path: ['scale'], message: `must have as many values as mean (${s.mean.length}), got ${s.scale.length}` });
  }
});

/** The fields of InferenceInfo, for schemas that carry them alongside others (createModel's options). */
export const inferenceFields = {
  /** The input columns by name, in the order the model reads them (CSV data). */
  featureNames: z.array(z.string().min(1)).min(1).optional(),
  /** How raw inputs are scaled before the model sees them. */
  scaling: InputScaling.optional(),
  /** The name of each class id (classification). */
  classNames: z.array(z.string().min(1)).min(2).optional(),
};

/** Refinement of a schema with inferenceFields: names are unique. */
export function checkUniqueNames(info: { featureNames?: string[] | undefined; classNames?: string[] | undefined }, ctx: z.RefinementCtx): void {
  for (const key of ['featureNames', 'classNames'] as const) {
    const names = info[key];
    if (names === undefined) continue;
    const seen = new Set<string>();
    names.forEach((name, i) => {
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [key, i], message: `"${name}" appears twice` });
      seen.add(name);
    });
  }
}

export const InferenceInfo = z.strictObject(inferenceFields).superRefine(checkUniqueNames);

export type InputScaling = z.infer<typeof InputScaling>;
export type InferenceInfo = z.infer<typeof InferenceInfo>;

/** Validates an inference info value; DPT_ERR_MODEL_FILE or the caller's code, each problem named under `where`. */
export function parseInferenceInfo(value: unknown, where: string, code: 'DPT_ERR_MODEL_FILE' | 'DPT_ERR_CONFIG' = 'DPT_ERR_MODEL_FILE'): InferenceInfo {
  const result = InferenceInfo.safeParse(value, { error: plainIssueMessage });
  if (!result.success) throw dptError(code, formatZodError(result.error, where));
  return result.data;
}

/**
 * Checks the info against the model it describes: as many feature names as
 * input values, scaling for one or every input value, one class name per
 * class. Returns a problem in words, or null.
 */
export function inferenceInfoProblem(info: InferenceInfo, inputSize: number, numClasses: number | null): string | null {
  if (info.featureNames !== undefined && info.featureNames.length !== inputSize) {
    return `featureNames: ${info.featureNames.length} names for a model that reads ${inputSize} values per sample`;
  }
  if (info.scaling !== undefined && info.scaling.mean.length !== 1 && info.scaling.mean.length !== inputSize) {
    return `scaling: ${info.scaling.mean.length} values; expected 1 (every input) or ${inputSize} (one per input value)`;
  }
  if (info.classNames !== undefined) {
    if (numClasses === null) return 'classNames: the model predicts values, not classes';
    if (info.classNames.length !== numClasses) return `classNames: ${info.classNames.length} names for ${numClasses} classes`;
  }
  return null;
}
