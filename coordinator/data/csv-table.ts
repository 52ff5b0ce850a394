// CSV files as tables of raw fields, shared by the training data (csv.ts)
// and prediction input (predict-csv.ts).
//
// File format:
//   - UTF-8 (a leading byte-order mark is ignored), lines end in \n or \r\n,
//     fields are separated by commas (only commas).
//   - Line 1 is the header: the column names, unique and non-empty.
//   - Every other non-blank line is one sample with exactly as many fields as
//     the header. Blank lines are skipped (line numbers in errors still count
//     them, so they match an editor's).
//   - Quoting, minimal RFC 4180: a field may be enclosed in double quotes,
//     inside which a comma is data and "" stands for one quote. A quoted field
//     may not span lines, and a quote inside an unquoted field is an error.
//   - Spaces around a field are trimmed. Feature values are decimal numbers
//     (123, -1.5, .5, 2e-3); empty values, NaN and infinities are errors.
//
// Every problem is DPT_ERR_DATASET naming the file, the line and the column.
import { readFile } from 'node:fs/promises';
import { dptError } from '../../src/errors.js';

/** One parsed file: its header and the raw fields of each data row with its line number. */
export interface RawTable {
  file: string; // as the user named it, for messages
  header: string[];
  rows: string[][];
  lines: number[];
}

export function fileError(file: string, line: number | undefined, msg: string): never {
  throw dptError('DPT_ERR_DATASET', line === undefined ? `${file}: ${msg}` : `${file}:${line}: ${msg}`);
}

/** Split one line into fields (minimal RFC 4180, see the top of the file). */
function splitLine(text: string, file: string, line: number): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    // skip leading spaces of a field
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (text[i] === '"') {
      let value = '';
      i++;
      for (;;) {
        const q = text.indexOf('"', i);
        if (q < 0) fileError(file, line, `field ${fields.length + 1}: a quoted field is not closed on this line (fields spanning lines are not supported)`);
        value += text.slice(i, q);
        if (text[q + 1] === '"') {
          value += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
      if (i < text.length && text[i] !== ',') fileError(file, line, `field ${fields.length + 1}: unexpected text after a closing quote`);
      fields.push(value);
    } else {
      const comma = text.indexOf(',', i);
      const end = comma < 0 ? text.length : comma;
      const value = text.slice(i, end).trim();
      if (value.includes('"')) fileError(file, line, `field ${fields.length + 1}: a quote inside an unquoted field (quote the whole field and double the quote: "a ""b""")`);
      fields.push(value);
      i = end;
    }
    if (i >= text.length) return fields;
    i++; // the comma
  }
}

export async function readTable(path: string, file: string): Promise<RawTable> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw dptError('DPT_ERR_DATASET', `${file}: cannot read the CSV file: ${(e as Error).message}`);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r?\n/);
  let h = 0;
  while (h < lines.length && lines[h].trim() === '') h++;
  if (h >= lines.length) fileError(file, undefined, 'the file is empty (expected a header row and data rows)');
  if (h > 0) fileError(file, h + 1, 'the header must be on line 1 (remove the blank lines before it)');
  const header = splitLine(lines[0], file, 1);
  const seen = new Set<string>();
  header.forEach((name, k) => {
    if (name === '') fileError(file, 1, `column ${k + 1} of the header has no name`);
    if (seen.has(name)) fileError(file, 1, `column "${name}" appears twice in the header`);
    seen.add(name);
  });
  const rows: string[][] = [];
  const rowLines: number[] = [];
  for (let l = 1; l < lines.length; l++) {
    if (lines[l].trim() === '') continue;
    const fields = splitLine(lines[l], file, l + 1);
    if (fields.length !== header.length) {
      fileError(file, l + 1, `expected ${header.length} fields (as in the header), found ${fields.length}`);
    }
    rows.push(fields);
    rowLines.push(l + 1);
  }
  if (rows.length === 0) fileError(file, undefined, 'no data rows after the header');
  return { file, header, rows, lines: rowLines };
}

export const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function parseNumber(t: RawTable, r: number, col: string, raw: string): number {
  if (raw === '') fileError(t.file, t.lines[r], `column "${col}" is empty`);
  if (!NUMBER_RE.test(raw)) fileError(t.file, t.lines[r], `column "${col}": "${raw}" is not a number`);
  const v = Number(raw);
  // NOTE: values are stored as float32; 1e39 is a finite double but not a float.
  if (!Number.isFinite(Math.fround(v))) fileError(t.file, t.lines[r], `column "${col}": "${raw}" is out of the float32 range`);
  return v;
}

export function columnIndex(t: RawTable, name: string, role: string): number {
  const k = t.header.indexOf(name);
  if (k < 0) fileError(t.file, 1, `no ${role} column "${name}"; the header's columns are: ${t.header.map((c) => `"${c}"`).join(', ')}`);
  return k;
}

/** Features (float64, row-major) of a table. */
export function readFeatures(t: RawTable, features: string[]): Float64Array {
  const cols = features.map((f) => columnIndex(t, f, 'feature'));
  const F = cols.length;
  const out = new Float64Array(t.rows.length * F); // (rows, F)
  for (let r = 0; r < t.rows.length; r++) {
    for (let j = 0; j < F; j++) out[r * F + j] = parseNumber(t, r, features[j], t.rows[r][cols[j]]);
  }
  return out;
}
