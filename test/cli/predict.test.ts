// `dptrain predict` in real processes, after real training runs:
//   - the CSV example (examples/csv-blobs.json, standardised features, class
//     names): on the held-out rows, predict names the classes and scores
//     exactly the accuracy training reported; the same model file with its
//     stored scaling removed (a file as written before it was kept) shows
//     what predicting on unscaled features would lose;
//   - an MNIST model: a CSV of 784 pixel columns, grey levels 0-255;
//   - bad input refused with file, line and column; bad model files and
//     output paths refused with their codes.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CSV_SPLIT_SEED } from '../../coordinator/data/csv.js';
import { loadTrainData } from '../../coordinator/data/load.js';
import { epochPermutation } from '../../src/data/sampler.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';
import { lastJson, ROOT, runCli, smallCnnConfig, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';

const BLOBS = join(ROOT, 'examples/data/blobs.csv');

/** The rows of the held-out test split of a CSV file (csv.ts's rule), with its header, in file order. */
function heldOutRows(file: string, testFraction: number): string {
  const [header, ...rows] = readFileSync(file, 'utf8').trim().split('\n');
  const perm = epochPermutation(CSV_SPLIT_SEED, 0, rows.length);
  const test = new Set(Array.from(perm.subarray(0, Math.round(rows.length * testFraction))));
  return [header, ...rows.filter((_, r) => test.has(r))].join('\n') + '\n';
}

/** The score line's accuracy: [correct, rows]. */
function scored(stderr: string): [number, number] {
  const m = /accuracy [\d.]+% \((\d+) of (\d+)\)/.exec(stderr);
  if (m === null) throw new Error(`no accuracy in:\n${stderr}`);
  return [Number(m[1]), Number(m[2])];
}

describe('dptrain predict on the CSV example', () => {
  const dir = tempDir('dptrain-predict-');
  const model = join(dir, 'run', 'model.dptmodel');
  const heldOut = join(dir, 'held-out.csv');
  let reported = 0;

  beforeAll(async () => {
    const r = await runCli(['train', '--config', join(ROOT, 'examples/csv-blobs.json'), '--out', join(dir, 'run'), '--workers', '0', '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    reported = lastJson(r.stdout).test.accuracy as number;
    writeFileSync(heldOut, heldOutRows(BLOBS, 0.2));
  });

  it('names the classes, gives probabilities, and scores the accuracy training reported on the same rows', async () => {
    const r = await runCli(['predict', model, '--input', heldOut, '--label', 'kind']);
    expect(r.code, r.stderr).toBe(0);
    const [header, ...rows] = r.stdout.trim().split('\n');
    expect(header).toBe('class,p_amber,p_cobalt,p_jade');
    expect(rows).toHaveLength(120);
    for (const row of rows) {
      const [name, ...p] = row.split(',');
      expect(['amber', 'cobalt', 'jade']).toContain(name);
      const probs = p.map(Number);
      expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(['amber', 'cobalt', 'jade'][probs.indexOf(Math.max(...probs))]).toBe(name);
    }
    const [correct, n] = scored(r.stderr);
    expect(n).toBe(120);
    expect(correct / n).toBe(Math.round(reported * 120) / 120);
    expect(reported).toBeGreaterThan(0.9);
    console.log(`blobs held-out rows: training reported accuracy ${(100 * reported).toFixed(2)}%, predict scored ${correct} of ${n}`);
  });

  it('without the stored scaling, predicting on raw features loses most of the accuracy', async () => {
    // The model file as it was before the scaling was kept: same weights, class names, no scaling.
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(model)));
    const info = JSON.parse(metadata.inference) as { scaling?: unknown; classNames: string[] };
    expect(info.scaling).toBeDefined();
    delete info.scaling;
    const unscaled = join(dir, 'unscaled.dptmodel');
    writeFileSync(unscaled, encodeSafetensors([...tensors], { ...metadata, inference: JSON.stringify(info) }));
    const r = await runCli(['predict', unscaled, '--input', heldOut, '--label', 'kind']);
    expect(r.code, r.stderr).toBe(0);
    const [correct, n] = scored(r.stderr);
    console.log(`blobs held-out rows without the scaling: ${correct} of ${n} (${(100 * correct / n).toFixed(2)}%), with it ${(100 * reported).toFixed(2)}%`);
    expect(correct / n).toBeLessThan(reported - 0.3);
  });

  it('writes --out as CSV or --json lines; extra columns are ignored, and the label column too without --label', async () => {
    const out = join(dir, 'predictions.jsonl');
    const r = await runCli(['predict', model, '--input', BLOBS, '--json', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`wrote ${out} (600 rows)\n`);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { class: string; probabilities: Record<string, number> });
    expect(lines).toHaveLength(600);
    expect(Object.keys(lines[0].probabilities)).toEqual(['amber', 'cobalt', 'jade']);
    // Columns in another order, one more column, no label: the same predictions.
    const [header, ...rows] = readFileSync(BLOBS, 'utf8').trim().split('\n');
    const cols = header.split(',');
    const order = [4, 3, 2, 1, 0];
    const shuffled = [[...order.map((k) => cols[k]), 'note'].join(','), ...rows.map((row) => { const f = row.split(','); return [...order.map((k) => f[k]), 'x'].join(','); })];
    writeFileSync(join(dir, 'shuffled.csv'), shuffled.join('\n'));
    const again = await runCli(['predict', model, '--input', join(dir, 'shuffled.csv'), '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual(lines);
  });

  it('refuses bad rows with file, line and column, and bad labels, model files and output paths', async () => {
    const lines = readFileSync(BLOBS, 'utf8').split('\n');
    lines[6] = lines[6].replace(/^([^,]+,[^,]+),[^,]+/, '$1,oops');
    writeFileSync(join(dir, 'bad.csv'), lines.join('\n'));
    let r = await runCli(['predict', model, '--input', join(dir, 'bad.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`dptrain: error [DPT_ERR_DATASET]: ${join(dir, 'bad.csv')}:7: column "feature_c": "oops" is not a number`);

    writeFileSync(join(dir, 'no-column.csv'), 'feature_a,feature_b,temperature\n1,2,3\n');
    r = await runCli(['predict', model, '--input', join(dir, 'no-column.csv')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no-column.csv:1: no feature column "feature_c"');

    writeFileSync(join(dir, 'bad-label.csv'), 'feature_a,feature_b,feature_c,temperature,kind\n1,2,3,4,jade\n1,2,3,4,ruby\n');
    r = await runCli(['predict', model, '--input', join(dir, 'bad-label.csv'), '--label', 'kind']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('bad-label.csv:3: column "kind": "ruby" is not a class of the model (amber, cobalt, jade)');

    r = await runCli(['predict', BLOBS, '--input', BLOBS]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[DPT_ERR_MODEL_FILE]');

    r = await runCli(['predict', model, '--input', BLOBS, '--out', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`[DPT_ERR_OUTPUT]: ${dir}: cannot write the predictions: it is a folder`);

    r = await runCli(['predict', model]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[DPT_ERR_USAGE]: required option '--input <file>' not specified");
  });
});

describe('dptrain predict with an MNIST model', () => {
  // The CNN reads the same 784 values as a [1, 28, 28] image (flat rows in NCHW order).
  const models: [string, Record<string, unknown>][] = [
    ['an MLP', smallMlpConfig({ epochs: 2 })],
    ['a CNN', smallCnnConfig({ epochs: 2, data: { type: 'mnist', view: 'image', trainLimit: 512, testLimit: 256 } })],
  ];
  for (const [what, cfg] of models) it(`${what}: reads 784 pixel columns of grey levels 0-255 and scores what training reported`, async () => {
    const dir = tempDir('dptrain-predict-mnist-');
    const config = writeJson(dir, 'config.json', cfg);
    const r = await runCli(['train', '--config', config, '--out', join(dir, 'run'), '--workers', '0', '--json', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const reported = lastJson(r.stdout).test.accuracy as number;
    // The same 256 test digits, as an image file holds them: grey levels 0-255, and a label column first.
    const { test } = await loadTrainData({ type: 'mnist', view: 'flat', testLimit: 256 });
    const header = ['label', ...Array.from({ length: 784 }, (_, k) => `pixel${k}`)].join(',');
    const rows = Array.from({ length: test.n }, (_, i) =>
      [test.y[i], ...Array.from(test.x.subarray(i * 784, (i + 1) * 784), (v) => Math.round(v * 255))].join(','));
    const csv = join(dir, 'digits.csv');
    writeFileSync(csv, [header, ...rows].join('\n'));

    const p = await runCli(['predict', join(dir, 'run', 'model.dptmodel'), '--input', csv, '--label', 'label']);
    expect(p.code, p.stderr).toBe(0);
    const [out, ...lines] = p.stdout.trim().split('\n');
    expect(out).toBe(['class', ...Array.from({ length: 10 }, (_, d) => `p_${d}`)].join(','));
    expect(lines).toHaveLength(256);
    const [correct, n] = scored(p.stderr);
    // NOTE: the training digits are k/255 rounded to 3 decimals; a grey level / 255 differs by < 5e-4.
    expect(Math.abs(correct - reported * n)).toBeLessThanOrEqual(2);
    console.log(`MNIST ${what} (2 epochs on 512 digits): training reported ${(100 * reported).toFixed(2)}% on 256 test digits, predict from grey levels scored ${correct} of ${n}`);

    const missing = await runCli(['predict', join(dir, 'run', 'model.dptmodel'), '--input', csv]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('digits.csv:1: 785 feature columns; the model reads 784 values per sample, one column each, in file order; name the label column with --label COLUMN');
  });
});
