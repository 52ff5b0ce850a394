// Writing a file so that a reader (or a crash) sees the old file or the new
// one, never half of one: a temporary file beside the target, fsync, rename;
// the temporary file is removed when anything fails. The one helper for run
// folders, checkpoints, model files and dataset caches, in a blocking form
// (the trainer writes between steps) and a promise form (caches).
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';

/** Our temporary files: `<target>.tmp-<pid>-<n>` (a process killed mid-write leaves one; `<target>.tmp-<pid>` from earlier versions). */
export const TEMP_FILE_RE = /\.tmp-\d+(-\d+)?$/;

let written = 0;

/** A temporary name beside `file`, unique within this process (two writers of one file never share one). */
function tempPath(file: string): string {
  return `${file}.tmp-${process.pid}-${written++}`;
}

/** Writes `bytes` to `file` atomically; throws the file system's error. */
export function writeFileAtomicSync(file: string, bytes: Uint8Array): void {
  const tmp = tempPath(file);
  try {
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < bytes.byteLength) off += writeSync(fd, bytes, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created, or already renamed
    }
    throw err;
  }
}

/** writeFileAtomicSync without blocking the event loop. */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = tempPath(file);
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
