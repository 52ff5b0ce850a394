// Prediction input from a CSV file (csv-table.ts's format): the rows a model
// reads, by its feature columns.
//   - A model that knows its feature names (trained on CSV) reads those
//     columns by name, in its own order; other columns are ignored.
//   - A model without names (MNIST: 784 pixels) reads every column but the
//     label column, in file order; there must be exactly as many as it reads.
//   - `label` names a column of targets to score against: class names (or
//     ids) of the model's classes, or numbers for a regression model.
// Values stay raw (float64): the model's stored scaling is applied when it
// predicts, exactly as the training data was scaled.
import { resolve } from 'node:path';
import type { DptrainModel } from '../../src/api/model.js';
import { columnIndex, fileError, parseNumber, readFeatures, readTable, type RawTable } from './csv-table.js';

export interface CsvInput {
  /** (rows, inputSize) raw values, in the model's order. */
  readonly input: Float64Array;
  readonly rows: number;
  /** The file's line number of each row. */
  readonly lines: number[];
  /** With a label column: class ids (classification) or values (rows, targets per row); else null. */
  readonly targets: Float64Array | null;
}

function featureColumns(t: RawTable, model: DptrainModel, label: string | undefined): string[] {
  if (model.featureNames !== null) {
    if (label !== undefined && model.featureNames.includes(label)) {
      fileError(t.file, 1, `--label ${label}: that column is one of the model's features (${model.featureNames.join(', ')})`);
    }
    return [...model.featureNames];
  }
  const columns = t.header.filter((c) => c !== label);
  if (columns.length !== model.inputSize) {
    const hint = label === undefined && columns.length === model.inputSize + 1 ? '; name the label column with --label COLUMN' : '';
    fileError(t.file, 1, `${columns.length} feature columns${label === undefined ? '' : ` besides the label "${label}"`}; ` +
      `the model reads ${model.inputSize} values per sample, one column each, in file order${hint}`);
  }
  return columns;
}

function readTargets(t: RawTable, model: DptrainModel, label: string): Float64Array {
  const col = columnIndex(t, label, 'label');
  const out = new Float64Array(t.rows.length);
  const names = model.classNames ?? Array.from({ length: model.numClasses }, (_, c) => String(c));
  for (let r = 0; r < t.rows.length; r++) {
    const raw = t.rows[r][col];
    if (model.task === 'regression') {
      out[r] = parseNumber(t, r, label, raw);
      continue;
    }
    const id = names.indexOf(raw);
    if (id < 0) fileError(t.file, t.lines[r], `column "${label}": "${raw}" is not a class of the model (${names.join(', ')})`);
    out[r] = id;
  }
  return out;
}

/** Reads `file` (a path, resolved against baseDir, default the working directory) for `model`. */
export async function readCsvInput(file: string, model: DptrainModel, options: { label?: string; baseDir?: string } = {}): Promise<CsvInput> {
  const t = await readTable(resolve(options.baseDir ?? process.cwd(), file), file);
  if (model.task === 'regression' && options.label !== undefined && model.outputSize !== 1) {
    fileError(t.file, 1, `--label ${options.label}: the model predicts ${model.outputSize} values per sample; one label column scores one`);
  }
  const input = readFeatures(t, featureColumns(t, model, options.label));
  const targets = options.label === undefined ? null : readTargets(t, model, options.label);
  return { input, rows: t.rows.length, lines: t.lines, targets };
}
