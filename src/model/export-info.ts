// What the PyTorch and TF.js exports carry besides the weights, so that a
// user of the other framework predicts what `dptrain predict` predicts: how
// raw inputs are scaled before the model sees them, the input columns by
// name, the class names in class-id order, and what the outputs mean (the
// loss decides: logits, probabilities, scores or values).
//
// The same fields as the native file's `inference` (inference-info.ts), so a
// reader of either knows both. The torch export stores them as JSON under
// __metadata__.inference (safetensors metadata holds strings), plus `loss`
// and `outputs`; the TF.js export puts them in model.json's
// userDefinedMetadata (LayersModel.getUserDefinedMetadata()).
//
// Applying the scaling: x = (raw - mean[j]) / scale[j] for input value j (one
// value in mean and scale: the same for every input), in float64, then
// rounded to float32: what training and `dptrain predict` compute.
import { isLossName } from '../losses/index.js';
import { outputKindOf } from '../infer/outputs.js';
import type { InferenceInfo } from './inference-info.js';

export interface ExportInfo {
  /** What the native model file keeps for inference (null or {}: inputs are used as given, classes by id). */
  readonly inference: InferenceInfo | null;
  /** The loss the model was trained with (the model file's extras.loss), if known. */
  readonly loss?: string | undefined;
}

/** The metadata both exports carry: the inference fields, the loss and a sentence on the outputs. */
export interface ExportMetadata extends InferenceInfo {
  loss?: string;
  /** What the outputs are and how to read a class or value from them. */
  outputs: string;
  /** How to apply the scaling, in one sentence (present when there is a scaling). */
  scalingFormula?: string;
}

export const SCALING_FORMULA =
  'x[j] = (raw[j] - mean[j]) / scale[j] for input value j (mean and scale of length 1 apply to every value), computed in float64 and then rounded to float32';

/** The sentence on what the outputs mean, from the loss (see infer/outputs.ts). */
export function outputsSentence(loss: string | undefined, outputSize: number): string {
  if (loss === undefined || !isLossName(loss)) return 'unknown: the model file does not name its loss';
  const kind = outputKindOf(loss, outputSize);
  const names = 'the class id i is classNames[i]';
  if (kind.task === 'classification') {
    switch (kind.probabilities) {
      case 'softmax': return `logits: the class is the argmax, the probabilities softmax(outputs); ${names}`;
      case 'outputs': return `probabilities (the model ends in softmax): the class is the argmax; ${names}`;
      case 'none': return `scores (margin loss, no probabilities): the class is the argmax; ${names}`;
      case 'sigmoid-binary': return `one logit z: class 1 when sigmoid(z) > 0.5, else class 0; ${names}`;
    }
  }
  return kind.values === 'sigmoid'
    ? 'logits of independent labels: each value is sigmoid(output)'
    : 'values: the outputs are the predictions';
}

/** The metadata of an export of a model with `outputSize` outputs. */
export function exportMetadata(info: ExportInfo, outputSize: number): ExportMetadata {
  const inference = info.inference ?? {};
  const out: ExportMetadata = { outputs: outputsSentence(info.loss, outputSize) };
  if (info.loss !== undefined) out.loss = info.loss;
  if (inference.featureNames !== undefined) out.featureNames = [...inference.featureNames];
  if (inference.scaling !== undefined) {
    out.scaling = { mean: [...inference.scaling.mean], scale: [...inference.scaling.scale] };
    out.scalingFormula = SCALING_FORMULA;
  }
  if (inference.classNames !== undefined) out.classNames = [...inference.classNames];
  return out;
}
