// Where converted datasets are cached, by the conventions of command-line
// tools: $DPTRAIN_CACHE, else $XDG_CACHE_HOME/dptrain, else ~/.cache/dptrain.
// Never under the working directory: a container's or a shared folder's cwd
// may be read-only or belong to someone else.

import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { dptError, type DptrainError } from '../../src/errors.js';

/** The environment variable that names the cache folder. */
export const CACHE_ENV = 'DPTRAIN_CACHE';

/**
 * The dataset cache folder for this environment. An empty variable counts as
 * unset; a relative XDG_CACHE_HOME is ignored, as the XDG spec says.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env, home: () => string = homedir): string {
  const own = env[CACHE_ENV];
  if (own !== undefined && own !== '') return resolve(own);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg !== '' && isAbsolute(xdg)) return join(xdg, 'dptrain');
  return join(home(), '.cache', 'dptrain');
}

/** The error for a cache folder that cannot be written: names the folder and what to set. */
export function cacheNotWritable(cacheDir: string, cause: unknown): DptrainError {
  // NOTE: Node's recursive mkdir reports ENOENT, not EROFS, on a read-only
  // file system (seen with podman run --read-only): the folder and the
  // variable to set are the useful part of the message.
  return dptError('DPT_ERR_CACHE', `cannot write the dataset cache ${cacheDir} (${(cause as Error).message}); set ${CACHE_ENV} to a writable folder`);
}
