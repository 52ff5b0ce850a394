// A user's program, type-checked against the installed package's
// declarations (strict, no skipLibCheck) and run by test/package/package.test.ts:
// build a model from a spec, train it on 2 threads, predict, save, load,
// predict again. It writes what it saw to node-result.json.
import { writeFileSync } from 'node:fs';
import {
  createModel, DptrainError, examples, examplesDir, loadModelFile, readCsvInput, saveModelFile, train,
  type ModelSpecInput, type TrainConfigInput, type TrainProgress,
} from 'dptrain';

const spec: ModelSpecInput = {
  inputShape: [4],
  layers: [{ type: 'dense', units: 16, activation: 'tanh' }, { type: 'dense', units: 3 }],
};

// Build: the spec is checked as the command line checks a config's.
let refused = '';
try {
  createModel({ inputShape: [4], layers: [{ type: 'dense', units: 0 }] }, { loss: 'softmax_cross_entropy' });
} catch (e) {
  if (e instanceof DptrainError) refused = `${e.code}: ${e.message}`;
}
const built = createModel(spec, { loss: 'softmax_cross_entropy' });

const config: TrainConfigInput = {
  seed: 1,
  data: { type: 'csv', train: 'blobs.csv', label: 'kind', testFraction: 0.2, standardize: true },
  model: built.spec,
  loss: built.loss,
  optimizer: { lr: 0.1, momentum: 0.9 },
  epochs: 10,
  batchSize: 32,
  microShards: 4,
};
const events: TrainProgress['type'][] = [];
const result = await train({ config, workers: 2, out: 'run-api', onProgress: (e) => { events.push(e.type); } });
if (result.status !== 'finished') throw new Error(`the run stopped at step ${result.step}`);

// The package's examples, wherever npm put them; a path relative to this folder is not one, and the error says where it is.
const example = await train({ config: examples['csv-blobs'], workers: 0, maxSteps: 3, out: 'run-example' });
let exampleMissing = '';
try {
  await train({ config: 'examples/csv-blobs.json', workers: 0, maxSteps: 3, out: 'run-nowhere' });
} catch (e) {
  if (e instanceof DptrainError) exampleMissing = `${e.code}: ${e.message}`;
}
// A second run into the same folder: the advice names train()'s options.
let secondRun = '';
try {
  await train({ config: examples['csv-blobs'], workers: 0, maxSteps: 3, out: 'run-example' });
} catch (e) {
  if (e instanceof DptrainError) secondRun = `${e.code}: ${e.message}`;
}

const csv = await readCsvInput('blobs.csv', result.model, { label: 'kind' });
const exampleCsv = await readCsvInput(`${examplesDir}/data/blobs.csv`, result.model, { label: 'kind' });
const first = result.model.predict(csv.input);
saveModelFile('model.dptmodel', result.model);
const loaded = loadModelFile('model.dptmodel');
const again = loaded.predict(csv.input);
if (first.task !== 'classification' || again.task !== 'classification') throw new Error('expected class predictions');
const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const evaluation = loaded.evaluate(csv.input, csv.targets ?? []);

writeFileSync('node-result.json', JSON.stringify({
  refused,
  builtParameters: built.parameterCount,
  events: [...new Set(events)],
  workers: result.workers,
  reportedAccuracy: result.test.accuracy,
  classNames: loaded.classNames,
  featureNames: loaded.featureNames,
  rows: Array.from({ length: csv.rows }, (_, i) => Array.from(csv.input.subarray(i * 4, (i + 1) * 4))),
  classes: Array.from(first.classes),
  labels: first.labels,
  probabilities: Array.from(first.probabilities ?? []),
  sameAfterLoad: sameBits(first.outputs, again.outputs) && first.labels.join() === again.labels.join(),
  accuracy: evaluation.accuracy ?? null,
  exampleStatus: example.status === 'finished' ? `finished ${example.steps} steps` : example.status,
  exampleMissing,
  secondRun,
  exampleCsvRows: exampleCsv.rows,
  examplesDir,
}));
