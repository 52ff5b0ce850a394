// `dptrain conformance DIR`: every *.json fixture file in DIR through the
// core; per file the cases passed and the worst relative error.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FixtureFile } from '../../../src/check/fixture.js';
import { formatZodError } from '../../../src/check/zod-format.js';
import { runFixtureFile, type FileResult } from '../../../src/check/conformance/index.js';
import { parseJsonText } from '../../../src/check/json-text.js';
import { dptError } from '../../../src/errors.js';

export interface ConformanceReport {
  passed: boolean;
  files: FileResult[];
}

export function runConformance(dir: string): ConformanceReport {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    names = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch (err) {
    throw dptError('DPT_ERR_FIXTURE', `${dir}: cannot list fixture files (${(err as Error).message})`);
  }
  if (names.length === 0) throw dptError('DPT_ERR_FIXTURE', `${dir}: no .json fixture files here`);
  const files = names.map((name): FileResult => {
    const path = join(dir, name);
    let fixture: FixtureFile;
    try {
      const text = readFileSync(path, 'utf8');
      let value: unknown;
      try {
        value = parseJsonText(text);
      } catch (err) {
        // The report has one line per file: the place and the cause, not the excerpt.
        throw new Error(`not valid JSON: ${(err as Error).message.split('\n')[0]}`);
      }
      const parsed = FixtureFile.safeParse(value);
      if (!parsed.success) throw new Error(`not in the fixture format: ${formatZodError(parsed.error).split('\n').slice(0, 3).join('; ')}`);
      fixture = parsed.data;
    } catch (err) {
      return { file: name, cases: 0, failed: 0, worstRelErr: 0, results: [], error: (err as Error).message };
    }
    return runFixtureFile(name, fixture);
  });
  const passed = files.every((f) => f.error === undefined && f.failed === 0 && f.cases > 0);
  return { passed, files };
}

export function printConformance(report: ConformanceReport, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({
      passed: report.passed,
      files: report.files.map((f) => ({ file: f.file, cases: f.cases, failed: f.failed, worstRelErr: f.worstRelErr, ...(f.error ? { error: f.error } : {}) })),
    }) + '\n');
    return;
  }
  const width = Math.max(...report.files.map((f) => f.file.length));
  for (const f of report.files) {
    if (f.error !== undefined) {
      process.stdout.write(`${f.file.padEnd(width)}  UNREADABLE  ${f.error}\n`);
      continue;
    }
    const status = f.failed === 0 ? 'ok  ' : 'FAIL';
    process.stdout.write(`${f.file.padEnd(width)}  ${status}  ${String(f.cases - f.failed).padStart(3)}/${String(f.cases).padEnd(3)} cases  worst rel err ${f.worstRelErr.toExponential(2)}\n`);
    for (const r of f.results.filter((x) => !x.passed)) {
      process.stdout.write(`    case "${r.label}"${r.op ? ` (${r.op})` : ''}:\n${r.failures.slice(0, 6).map((m) => `      ${m}`).join('\n')}\n`);
    }
  }
  process.stdout.write(report.passed ? 'conformance: all cases passed (rtol 1e-4, atol 1e-5)\n' : 'conformance: FAILED\n');
}
