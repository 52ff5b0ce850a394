// `dptrain predict MODEL --input FILE.csv [--label COL] [--out FILE] [--json]`:
// one output line per input row, through the library's own calls
// (loadModelFile, readCsvInput, model.predict, model.evaluate).
//
// Output (stdout, or --out FILE written atomically):
//   CSV: a header, then per row the predicted class (its name) and the
//        class probabilities, `class,p_<name>,...`; a margin-loss model has
//        no probabilities and writes its scores, `score_<name>`; a
//        regression model writes `value` (or value_0, value_1, ...);
//   --json: one object per row, {"class", "probabilities": {name: p}} (or
//        "scores"), {"value"} or {"values"} for regression.
// Numbers keep 6 significant digits. With --label COL, the rows are scored
// against that column and one summary line goes to stderr.
import type { DptrainModel } from '../../../src/api/model.js';
import type { Prediction } from '../../../src/infer/predict.js';
import type { Evaluation } from '../../../src/train/evaluate.js';
import { loadModelFile } from '../../api/model-files.js';
import { readCsvInput } from '../../data/predict-csv.js';
import { checkOutputFile, writeOutputFile } from '../../run/output-paths.js';

export interface PredictFlags {
  input: string;
  label?: string;
  out?: string;
  json?: boolean;
}

export interface PredictOutcome {
  /** The output text (written to flags.out when given). */
  text: string;
  rows: number;
  /** With a label column: the score line; else null. */
  score: string | null;
}

/** A number as the output shows it: 6 significant digits, no trailing zeros. */
function num(v: number): number {
  return Number(v.toPrecision(6));
}

/** A CSV field, quoted when it holds a comma, a quote or surrounding spaces (csv-table.ts reads it back). */
function csvField(s: string): string {
  return /[",]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function rowValues(all: Float32Array, i: number, width: number): number[] {
  return Array.from(all.subarray(i * width, (i + 1) * width), num);
}

/** The output lines: a CSV header and rows, or one JSON object per row. */
export function formatPrediction(p: Prediction, json: boolean): string[] {
  const lines: string[] = [];
  if (p.task === 'regression') {
    const D = p.outputSize;
    if (!json) lines.push(D === 1 ? 'value' : Array.from({ length: D }, (_, j) => `value_${j}`).join(','));
    for (let i = 0; i < p.rows; i++) {
      const v = rowValues(p.values, i, D);
      lines.push(json ? JSON.stringify(D === 1 ? { value: v[0] } : { values: v }) : v.join(','));
    }
    return lines;
  }
  const names = p.classNames;
  const [key, prefix, table] = p.probabilities !== null ? ['probabilities', 'p_', p.probabilities] : ['scores', 'score_', p.outputs];
  if (!json) lines.push(['class', ...names.map((n) => `${prefix}${n}`)].map(csvField).join(','));
  for (let i = 0; i < p.rows; i++) {
    const v = rowValues(table, i, p.numClasses);
    lines.push(json
      ? JSON.stringify({ class: p.labels[i], [key]: Object.fromEntries(names.map((n, c) => [n, v[c]])) })
      : [csvField(p.labels[i]), ...v].join(','));
  }
  return lines;
}

/** The --label summary: accuracy and macro-F1 for classes, the loss always. */
export function formatScore(model: DptrainModel, e: Evaluation, label: string): string {
  const parts = [`predict: ${e.samples} rows scored against column "${label}"`];
  if (e.accuracy !== undefined) {
    parts.push(`accuracy ${(100 * e.accuracy).toFixed(2)}% (${Math.round(e.accuracy * e.samples)} of ${e.samples})`);
    parts.push(`macro-F1 ${e.f1Macro!.toFixed(4)}`);
  }
  parts.push(`loss (${model.loss}) ${e.loss.toFixed(4)}`);
  return parts.join(', ');
}

export async function runPredict(modelFile: string, flags: PredictFlags): Promise<PredictOutcome> {
  if (flags.out !== undefined) checkOutputFile(flags.out, 'the predictions');
  const model = loadModelFile(modelFile);
  const csv = await readCsvInput(flags.input, model, flags.label === undefined ? {} : { label: flags.label });
  const prediction = model.predict(csv.input);
  const text = formatPrediction(prediction, flags.json === true).map((l) => l + '\n').join('');
  if (flags.out !== undefined) writeOutputFile(flags.out, new TextEncoder().encode(text), 'the predictions');
  const score = csv.targets === null ? null : formatScore(model, model.evaluate(csv.input, csv.targets), flags.label!);
  return { text, rows: csv.rows, score };
}
