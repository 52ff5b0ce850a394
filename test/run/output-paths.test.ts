// Writing to paths the user gave: a failure is one DPT_ERR_OUTPUT naming the
// path and the cause, and no temporary file is left behind.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendLine, checkOutputFile, ensureFolder, writeOutputFile } from '../../coordinator/run/output-paths.js';
import { tempDir } from '../helpers/cli.js';

const bytes = new Uint8Array(1000).fill(7);

describe('writeOutputFile', () => {
  it('writes the file whole, with no temporary file left', () => {
    const dir = tempDir();
    writeOutputFile(join(dir, 'a.bin'), bytes);
    expect(readdirSync(dir)).toEqual(['a.bin']);
    expect(readFileSync(join(dir, 'a.bin')).length).toBe(1000);
  });

  it('onto a folder: DPT_ERR_OUTPUT "it is a folder", the temporary file removed', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken', 'x'), 'x');
    expect(() => writeOutputFile(join(dir, 'taken'), bytes, 'the export')).toThrow(expect.objectContaining({
      code: 'DPT_ERR_OUTPUT', message: `${join(dir, 'taken')}: cannot write the export: it is a folder; give a file path`,
    }));
    expect(readdirSync(dir)).toEqual(['taken']);
  });

  it('into a missing folder, or below a file: DPT_ERR_OUTPUT naming the cause', () => {
    const dir = tempDir();
    expect(() => writeOutputFile(join(dir, 'missing', 'a.bin'), bytes)).toThrow(expect.objectContaining({
      code: 'DPT_ERR_OUTPUT', message: `${join(dir, 'missing', 'a.bin')}: cannot write the file: the folder ${join(dir, 'missing')} does not exist`,
    }));
    writeFileSync(join(dir, 'f'), 'x');
    expect(() => writeOutputFile(join(dir, 'f', 'a.bin'), bytes)).toThrow(expect.objectContaining({
      code: 'DPT_ERR_OUTPUT', message: expect.stringContaining('a part of the path is a file, not a folder'),
    }));
    expect(readdirSync(dir)).toEqual(['f']);
  });
});

describe('checks before writing', () => {
  it('checkOutputFile, ensureFolder and appendLine name the path and the cause', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'f'), 'x');
    expect(() => checkOutputFile(dir, 'the export')).toThrow(`${dir}: cannot write the export: it is a folder; give a file path`);
    expect(() => checkOutputFile(join(dir, 'f', 'x'), 'the export')).toThrow(`${join(dir, 'f', 'x')}: cannot write the export: ${join(dir, 'f')} is a file, not a folder`);
    expect(() => ensureFolder(join(dir, 'f'), 'the run folder')).toThrow(`${join(dir, 'f')}: cannot write the run folder: it is a file, not a folder`);
    ensureFolder(join(dir, 'a', 'b'));
    expect(() => appendLine(join(dir, 'a'), 'line', 'the metrics file')).toThrow(`${join(dir, 'a')}: cannot write the metrics file: it is a folder; give a file path`);
  });
});
