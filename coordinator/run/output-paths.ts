// Writing to paths the user gave (--out of train and export): every failure
// is one DPT_ERR_OUTPUT naming the path and the cause in words (not a Node
// stack trace), and nothing half-written or temporary is left behind.
// Files are written atomically: a temporary file beside the target, fsync,
// then rename, so a crash leaves the old file or the new one, never half of
// one; when anything fails the temporary file is removed.
import { appendFileSync, mkdirSync, statSync, type Stats } from 'node:fs';
import { writeFileAtomicSync } from '../../node/files/atomic-write.js';
import { dirname } from 'node:path';
import { dptError, type DptrainError } from '../../src/errors.js';

export { TEMP_FILE_RE } from '../../node/files/atomic-write.js';

/** The path's stats, or null if nothing is there. */
export function statOrNull(path: string): Stats | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** Why `path` could not be written, in words, from a Node file-system error. */
export function causeOf(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT': {
      const parent = dirname(path);
      return statOrNull(parent) === null ? `the folder ${parent} does not exist` : 'no such file or folder';
    }
    case 'ENOTDIR': return 'a part of the path is a file, not a folder';
    case 'EEXIST': return 'a file of that name exists where a folder is needed';
    case 'EISDIR': return 'it is a folder; give a file path';
    case 'EACCES':
    case 'EPERM': return 'permission denied';
    case 'ENOSPC': return 'no space left on the device';
    case 'EDQUOT': return 'disk quota exceeded';
    case 'EROFS': return 'the file system is read-only';
    default: return (err as Error).message;
  }
}

/** DPT_ERR_OUTPUT: `<path>: cannot write <what>: <cause>`. */
export function outputError(path: string, what: string, err: unknown): DptrainError {
  return dptError('DPT_ERR_OUTPUT', `${path}: cannot write ${what}: ${causeOf(err, path)}`);
}

/** Creates the folder `dir` (and its parents) unless it exists; a file in the way is DPT_ERR_OUTPUT. */
export function ensureFolder(dir: string, what = 'the output folder'): void {
  const st = statOrNull(dir);
  if (st !== null && !st.isDirectory()) throw dptError('DPT_ERR_OUTPUT', `${dir}: cannot write ${what}: it is a file, not a folder`);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw outputError(dir, what, err);
  }
}

/**
 * Checks before any work that `file` can be a new or replaced file: not a
 * folder, and in a folder that exists. Writing can still fail later (disk
 * full, permissions); writeOutputFile reports that the same way.
 */
export function checkOutputFile(file: string, what: string): void {
  const st = statOrNull(file);
  if (st !== null && st.isDirectory()) throw dptError('DPT_ERR_OUTPUT', `${file}: cannot write ${what}: it is a folder; give a file path`);
  const parent = statOrNull(dirname(file));
  if (parent === null) throw dptError('DPT_ERR_OUTPUT', `${file}: cannot write ${what}: the folder ${dirname(file)} does not exist`);
  if (!parent.isDirectory()) throw dptError('DPT_ERR_OUTPUT', `${file}: cannot write ${what}: ${dirname(file)} is a file, not a folder`);
}

/** Writes `bytes` to `file` atomically (node/files/atomic-write.ts); any failure is DPT_ERR_OUTPUT and leaves no temporary file. */
export function writeOutputFile(file: string, bytes: Uint8Array, what = 'the file'): void {
  try {
    writeFileAtomicSync(file, bytes);
  } catch (err) {
    throw outputError(file, what, err);
  }
}

/** Appends one line to `file`; a failure is DPT_ERR_OUTPUT. */
export function appendLine(file: string, line: string, what = 'the file'): void {
  try {
    appendFileSync(file, line + '\n');
  } catch (err) {
    throw outputError(file, what, err);
  }
}
