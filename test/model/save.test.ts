// The native model file: bit-exact round trips, refusal of files that do not
// match their spec, the PyTorch-style export and the atomic file writers.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { DptrainError } from '../../src/errors.js';
import { entryName, type Model } from '../../src/model/model.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { decodeSafetensors, encodeSafetensors, type F32Tensor } from '../../src/model/safetensors.js';
import { layerTensors, loadModel, saveModel } from '../../src/model/save.js';
import { exportSafetensorsTorch } from '../../src/model/torch-export.js';
import { lstmTorch } from '../../src/nn/lstm.js';
import { gruTorch } from '../../src/nn/gru.js';
import { loadModelFile, saveModelFile, writeTorchSafetensors } from '../../coordinator/run/model-files.js';
import { BATCHNORM_SPECS, BATCHNORM_TORCH_SPECS, bytesOf, EVERY_LAYER_SPEC, predict, randomInput, randomModel } from './helpers.js';

function expectModelFileError(fn: () => unknown, ...fragments: string[]): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, 'expected a DPT_ERR_MODEL_FILE error').toBeInstanceOf(DptrainError);
  expect((error as DptrainError).code).toBe('DPT_ERR_MODEL_FILE');
  for (const f of fragments) expect((error as Error).message).toContain(f);
}

/** Decode a saved file, let `edit` change its tensors, encode it again with the same metadata. */
function rewrite(bytes: Uint8Array, edit: (tensors: Map<string, F32Tensor>, metadata: Record<string, string>) => void): Uint8Array {
  const { tensors, metadata } = decodeSafetensors(bytes);
  edit(tensors, metadata);
  return encodeSafetensors(tensors, metadata);
}

describe('saveModel / loadModel', () => {
  const model = randomModel(EVERY_LAYER_SPEC, 11);
  const bytes = saveModel(model, { loss: 'categorical_crossentropy', epochs: '3' });

  test('the model covers every layer type and non-default statistics', () => {
    const types = new Set(model.layers.map((l) => l.type));
    for (const t of ['dense', 'relu', 'sigmoid', 'tanh', 'softmax', 'dropout', 'batchnorm', 'lstm', 'gru', 'flatten', 'reshape']) {
      expect(types.has(t), t).toBe(true);
    }
    const rv = model.entries.find((e) => e.name === 'running_var')!;
    expect(model.params[rv.offset]).not.toBe(1);
  });

  test('reloads to bit-identical weights and statistics, and the same spec and extras', () => {
    const { model: again, extras } = loadModel(bytes);
    expect(again.spec).toEqual(model.spec);
    expect(again.size).toBe(model.size);
    expect(bytesOf(again.params.subarray(0, again.size))).toEqual(bytesOf(model.params.subarray(0, model.size)));
    expect(extras).toEqual({ loss: 'categorical_crossentropy', epochs: '3' });
  });

  test('reloads to bit-identical eval-mode predictions', () => {
    const { model: again } = loadModel(bytes);
    const x = randomInput(model, 7, 5);
    expect(bytesOf(predict(again, x, 7))).toEqual(bytesOf(predict(model, x, 7)));
  });

  test('batch normalization on every axis (per channel of an image: gamma, beta and statistics [C]) reloads to the same bits and predictions', () => {
    for (const [name, spec] of Object.entries({ ...BATCHNORM_SPECS, ...BATCHNORM_TORCH_SPECS })) {
      const bn = randomModel(spec, 21);
      const { model: again } = loadModel(saveModel(bn));
      expect(again.spec, name).toEqual(bn.spec);
      expect(bytesOf(again.params.subarray(0, again.size)), name).toEqual(bytesOf(bn.params.subarray(0, bn.size)));
      const x = randomInput(bn, 5, 6);
      expect(bytesOf(predict(again, x, 5)), name).toEqual(bytesOf(predict(bn, x, 5)));
    }
    const image = loadModel(saveModel(randomModel(BATCHNORM_SPECS.image, 21))).model;
    expect(image.entries.filter((e) => e.name === 'running_var').map((e) => e.shape)).toEqual([[3], [6], [4], [48]]);
  });

  test('stores every flat tensor under its entryName in our layouts', () => {
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata.format).toBe('dptrain-model');
    expect(metadata.version).toBe('1');
    expect(JSON.parse(metadata.spec)).toEqual(model.spec);
    expect([...tensors.keys()]).toEqual(model.entries.map(entryName));
    expect(tensors.get('layers.0.lstm.W_ih')!.shape).toEqual([4, 24]);
    expect(tensors.get('layers.2.gru.b_hh')!.shape).toEqual([9]);
    expect(tensors.get('layers.1.batchnorm.running_var')!.shape).toEqual([6]);
  });

  test('loads into caller-provided buffers', () => {
    const params = new Float32Array(model.size + 3);
    const { model: again } = loadModel(bytes, { params });
    expect(again.params).toBe(params);
    expect(bytesOf(params.subarray(0, model.size))).toEqual(bytesOf(model.params.subarray(0, model.size)));
  });

  test('refuses reserved extras keys', () => {
    expect(() => saveModel(model, { spec: 'x' })).toThrow(/extras\.spec is reserved/);
  });
});

describe('loadModel refuses a file that does not match', () => {
  const model = randomModel(EVERY_LAYER_SPEC, 12);
  const bytes = saveModel(model);

  test('a truncated file, naming the tensor cut off', () => {
    expectModelFileError(() => loadModel(bytes.subarray(0, bytes.length - 10)), 'tensor "layers.9.batchnorm.running_var"', 'truncated');
  });

  test('a corrupt header length', () => {
    const bad = bytes.slice();
    new DataView(bad.buffer).setUint32(0, bytes.length, true);
    expectModelFileError(() => loadModel(bad), 'header length');
    const short = bytes.slice();
    new DataView(short.buffer).setUint32(0, 24, true);
    expectModelFileError(() => loadModel(short), 'header');
  });

  test('a tensor of the wrong shape', () => {
    const bad = rewrite(bytes, (t) => {
      t.set('layers.4.dense.W', { shape: [8, 15], data: t.get('layers.4.dense.W')!.data });
    });
    expectModelFileError(() => loadModel(bad), 'tensor "layers.4.dense.W" has shape [8, 15]', 'needs [15, 8]');
  });

  test('a missing tensor', () => {
    const bad = rewrite(bytes, (t) => t.delete('layers.7.gru.b_hh'));
    expectModelFileError(() => loadModel(bad), 'tensor "layers.7.gru.b_hh" [15] is missing');
  });

  test('an extra tensor', () => {
    const bad = rewrite(bytes, (t) => t.set('layers.8.dense.b', { shape: [7], data: new Float32Array(7) }));
    expectModelFileError(() => loadModel(bad), 'tensor "layers.8.dense.b" is not part of the model');
  });

  test('a missing, foreign or invalid spec', () => {
    expectModelFileError(() => loadModel(rewrite(bytes, (_t, m) => { delete m.spec; })), '__metadata__.spec is missing');
    expectModelFileError(() => loadModel(rewrite(bytes, (_t, m) => { m.spec = '{"inputShape": [4], "layers": [{"type": "dense", "units": 0}]}'; })),
      '__metadata__.spec', 'units');
    expectModelFileError(() => loadModel(rewrite(bytes, (_t, m) => { m.spec = '{nope'; })), 'not valid JSON');
    expectModelFileError(() => loadModel(rewrite(bytes, (_t, m) => { m.version = '2'; })), '__metadata__.version');
    expectModelFileError(() => loadModel(exportSafetensorsTorch(model)), '__metadata__.format');
  });

  test('an int64 tensor is not part of a model', () => {
    const { tensors, metadata } = decodeSafetensors(bytes);
    const bad = encodeSafetensors([...tensors, ['layers.1.batchnorm.num_batches_tracked', { shape: [], data: BigInt64Array.of(3n) }]], metadata);
    expectModelFileError(() => loadModel(bad), 'tensor "layers.1.batchnorm.num_batches_tracked" is not part of the model');
  });

  test('a batchnorm of an image saved when it normalized the last axis: refused, with what the spec needs', () => {
    const image = randomModel({ inputShape: [3, 4, 5], layers: [{ type: 'batchnorm' }, { type: 'flatten' }] }, 1);
    const old = rewrite(saveModel(image), (t) => {
      for (const k of [...t.keys()]) t.set(k, { shape: [5], data: new Float32Array(5) });
    });
    expectModelFileError(() => loadModel(old), 'has shape [5]; the spec needs [3]', '"axis": "last"');
    const fixed = rewrite(old, (_t, m) => { m.spec = JSON.stringify({ ...image.spec, layers: [{ type: 'batchnorm', axis: 'last' }, { type: 'flatten' }] }); });
    expect(loadModel(fixed).model.entries[0].shape).toEqual([5]);
  });
});

describe('exportSafetensorsTorch', () => {
  const model = randomModel(EVERY_LAYER_SPEC, 13);
  const { tensors, ints, metadata } = decodeSafetensors(exportSafetensorsTorch(model));
  const ours = (li: number, name: string) => layerTensors(model, li).get(name)!;
  const moduleOf = (type: string, nth = 0) => model.layers.map((l, i) => [l.type, i] as const).filter(([t]) => t === type)[nth][1];

  test('names and shapes of the equivalent nn.Sequential state_dict', () => {
    const shapes = Object.fromEntries([...tensors].map(([k, v]) => [k, v.shape]));
    expect(shapes).toEqual({
      '0.weight_ih_l0': [24, 4], '0.weight_hh_l0': [24, 6], '0.bias_ih_l0': [24], '0.bias_hh_l0': [24],
      '1.weight': [6], '1.bias': [6], '1.running_mean': [6], '1.running_var': [6],
      '2.weight_ih_l0': [9, 6], '2.weight_hh_l0': [9, 3], '2.bias_ih_l0': [9], '2.bias_hh_l0': [9],
      '4.weight': [8, 15], '4.bias': [8],
      '8.weight_ih_l0': [15, 4], '8.weight_hh_l0': [15, 5], '8.bias_ih_l0': [15], '8.bias_hh_l0': [15],
      '9.weight': [7, 5],
      '11.weight': [7], '11.bias': [7], '11.running_mean': [7], '11.running_var': [7],
      '13.weight': [6, 7], '13.bias': [6],
      '15.weight': [3, 6], '15.bias': [3],
      '17.weight': [4, 3], '17.bias': [4],
    });
    expect(metadata.format).toBe('pt');
    const modules = metadata.modules.split('\n');
    expect(modules.length).toBe(model.layers.length);
    expect(modules[0]).toMatch(/^0: LSTM\(4, 6, batch_first=True\)/);
    expect(modules[4]).toBe('4: Linear(15, 8)');
    expect(modules[5]).toBe('5: Tanh()');
    expect(modules[6]).toBe('6: Dropout(p=0.3)');
    expect(modules[9]).toBe('9: Linear(5, 7, bias=False)');
    expect(modules[10]).toBe('10: ReLU()');
    expect(modules[18]).toBe('18: Softmax(dim=-1)');
    expect(modules[1]).toBe('1: BatchNorm1d(6, eps=0.001, momentum=0.2) [input [5, 6]: normalizes the last axis, apply to x.transpose(1, 2)]');
    expect(modules[11]).toBe('11: BatchNorm1d(7, eps=0.00001, momentum=0.1)');
    expect(metadata.notes).toContain('num_batches_tracked (int64) is 0: the training steps were not known');
  });

  test('BatchNorm\'s num_batches_tracked: an int64 scalar, the training steps when known; BatchNorm2d on an image', () => {
    const out = decodeSafetensors(exportSafetensorsTorch(model, { batchesTracked: 375 }));
    expect([...out.ints].map(([k, v]) => [k, v.shape, v.data[0]])).toEqual([['1.num_batches_tracked', [], 375n], ['11.num_batches_tracked', [], 375n]]);
    expect(out.metadata.notes).toContain('num_batches_tracked (int64) is the training steps');
    expect([...ints].map(([k, v]) => [k, v.data[0]])).toEqual([['1.num_batches_tracked', 0n], ['11.num_batches_tracked', 0n]]);
    const image = randomModel({ inputShape: [3, 4, 5], layers: [{ type: 'conv2d', filters: 2, kernelSize: 3 }, { type: 'batchnorm' }, { type: 'flatten' }] }, 2);
    const modules = decodeSafetensors(exportSafetensorsTorch(image)).metadata.modules.split('\n');
    expect(modules[1]).toBe('1: BatchNorm2d(2, eps=0.00001, momentum=0.1)');
    expect(() => exportSafetensorsTorch(image, { batchesTracked: -1 })).toThrow(/batchesTracked must be a non-negative integer/);
  });

  test('a batchnorm on other axes: the BatchNorm{1,2,3}d of its rank, fed as the module line says', () => {
    const lines = (spec: ModelSpec) => decodeSafetensors(exportSafetensorsTorch(randomModel(spec, 4))).metadata.modules.split('\n');
    const args = 'eps=0.00001, momentum=0.1';
    expect(lines({ inputShape: [3, 4, 5], layers: [{ type: 'batchnorm', axis: 'last' }] }))
      .toEqual([`0: BatchNorm2d(5, ${args}) [input [3, 4, 5]: normalizes the last axis, apply to x.movedim(-1, 1)]`]);
    expect(lines({ inputShape: [4, 6], layers: [{ type: 'batchnorm', axis: 'channels' }] })).toEqual([`0: BatchNorm1d(4, ${args})`]);
    expect(lines({ inputShape: [2, 3, 4, 5], layers: [{ type: 'batchnorm' }, { type: 'batchnorm', axis: 'last' }] })).toEqual([
      `0: BatchNorm3d(2, ${args})`, `1: BatchNorm3d(5, ${args}) [input [2, 3, 4, 5]: normalizes the last axis, apply to x.movedim(-1, 1)]`,
    ]);
    expect(lines({ inputShape: [2, 2, 3, 2, 3], layers: [{ type: 'batchnorm' }, { type: 'batchnorm', axis: 'last' }] })).toEqual([
      `0: BatchNorm1d(2, ${args}) [input [2, 2, 3, 2, 3]: normalizes the channels, apply to x.flatten(2)]`,
      `1: BatchNorm1d(3, ${args}) [input [2, 2, 3, 2, 3]: normalizes the last axis, apply to x.movedim(-1, 1).flatten(2)]`,
    ]);
  });

  test('Linear weight is the transpose of our W; BatchNorm tensors are ours', () => {
    const W = ours(4, 'W');
    const w = tensors.get('4.weight')!;
    for (let i = 0; i < 15; i++) for (let o = 0; o < 8; o++) expect(w.data[o * 15 + i]).toBe(W.data[i * 8 + o]);
    expect(tensors.get('4.bias')!.data).toEqual(ours(4, 'b').data);
    expect(tensors.get('1.weight')!.data).toEqual(ours(1, 'gamma').data);
    expect(tensors.get('1.bias')!.data).toEqual(ours(1, 'beta').data);
    expect(tensors.get('11.running_mean')!.data).toEqual(ours(11, 'running_mean').data);
    expect(tensors.get('11.running_var')!.data).toEqual(ours(11, 'running_var').data);
  });

  test('LSTM and GRU tensors reproduce the layer outputs in PyTorch layout', () => {
    const B = 3, T = 5, F = 4;
    const x = randomInput(model, B, 21);
    // The first layer is the LSTM, fed x directly.
    const lstm = model.layers[0];
    const H = 6;
    const y = lstm.forward(x, B, { training: false, seed: 0, step: 0, rowOffset: 0 }).slice();
    const t = (k: string) => tensors.get(`0.${k}`)!.data;
    expect(t('bias_hh_l0')).toEqual(ours(0, 'b_hh').data);
    const ref = lstmTorch({
      B, T, F, H, x, h0: null, c0: null,
      weight_ih: t('weight_ih_l0'), weight_hh: t('weight_hh_l0'), bias_ih: t('bias_ih_l0'), bias_hh: t('bias_hh_l0'),
      G_output: null, G_h_n: null,
    });
    expect(bytesOf(ref.output)).toEqual(bytesOf(y));

    const gi = moduleOf('gru');
    const gru = model.layers[gi];
    const hx = new Float32Array(B * T * 6);
    for (let i = 0; i < hx.length; i++) hx[i] = Math.sin(i);
    const gy = gru.forward(hx, B, { training: false, seed: 0, step: 0, rowOffset: 0 }).slice();
    const g = (k: string) => tensors.get(`${gi}.${k}`)!.data;
    const gref = gruTorch({
      B, T, F: 6, H: 3, x: hx, h0: null,
      weight_ih: g('weight_ih_l0'), weight_hh: g('weight_hh_l0'), bias_ih: g('bias_ih_l0'), bias_hh: g('bias_hh_l0'),
      G_output: null, G_h_n: null,
    });
    expect(bytesOf(gref.output)).toEqual(bytesOf(gy));
  });
});

describe('coordinator/model-files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dptrain-model-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const model: Model = randomModel(EVERY_LAYER_SPEC, 14);

  test('writes and reads the native file atomically (no temporary left behind)', () => {
    const file = join(dir, 'model.dptmodel');
    saveModelFile(file, model, { loss: 'mse' });
    saveModelFile(file, model, { loss: 'mse' }); // overwrite in place
    expect(readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    const { model: again, extras } = loadModelFile(file);
    expect(extras).toEqual({ loss: 'mse' });
    expect(bytesOf(again.params.subarray(0, again.size))).toEqual(bytesOf(model.params.subarray(0, model.size)));
  });

  test('errors name the file', () => {
    const file = join(dir, 'broken.dptmodel');
    writeFileSync(file, readFileSync(join(dir, 'model.dptmodel')).subarray(0, 100));
    expectModelFileError(() => loadModelFile(file), file);
    expectModelFileError(() => loadModelFile(join(dir, 'absent.dptmodel')), 'absent.dptmodel', 'no such model file');
  });

  test('writes the torch safetensors', () => {
    const file = join(dir, 'model.safetensors');
    writeTorchSafetensors(file, model);
    const { tensors } = decodeSafetensors(new Uint8Array(readFileSync(file)));
    expect(tensors.has('0.weight_ih_l0')).toBe(true);
  });
});
