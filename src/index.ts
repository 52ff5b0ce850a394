// `dptrain/core`: the browser-safe public API (no Node imports). Build a
// model from a spec or load a model file's bytes, predict, evaluate and
// serialize; choose the kernels. `dptrain` (coordinator/index.ts) adds
// training, model files on disk and CSV input for Node.
export { createModel, loadModel } from './api/model.js';
export type { CreateModelOptions, DptrainModel, ModelSpecInput, PredictOptions, Targets } from './api/model.js';
export { initKernels } from './api/kernels.js';
export type { KernelName, KernelsOptions, WasmKernelsSource, WasmModule } from './api/kernels.js';
export type { ClassPrediction, Prediction, ValuePrediction } from './infer/predict.js';
export type { FeatureRow, NamedRow, PredictInput } from './infer/input.js';
export type { InferenceInfo, InputScaling } from './model/inference-info.js';
export type { LayerSpec, ModelSpec } from './model/spec.js';
export { LOSS_NAMES, type LossName } from './losses/index.js';
export type { Evaluation } from './train/evaluate.js';
export { DptrainError, type ErrorCode } from './errors.js';
