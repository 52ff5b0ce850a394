// `dptrain`: the public API for Node. Everything of `dptrain/core` (models
// from specs or bytes, predict, evaluate), plus training (in this thread, on
// worker threads, or as the coordinator of network workers), model files on
// disk and CSV input. Models are built with the WebAssembly kernels of the
// package unless initKernels chose otherwise.
export * from '../src/index.js';
export { initKernels } from './api/kernels.js';
export { createModel, loadModelFile, saveModelFile } from './api/model-files.js';
export { train } from './api/train.js';
export { examples, examplesDir, EXAMPLE_NAMES, type ExampleName } from './run/examples.js';
export type { TestMetrics, TrainInterrupted, TrainOptions, TrainProgress, TrainResult, TrainSummary } from './api/train.js';
export { readCsvInput, type CsvInput } from './data/predict-csv.js';
export type { TrainConfigInput } from './run/config.js';
