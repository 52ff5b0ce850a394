// The secrets of a cluster: the run's shared token (workers give it to
// join) and the viewer token (read-only: it opens the dashboard, /live and
// /metrics, and never lets a worker in). Where they come from, and how they
// are compared. Neither is ever logged by the coordinator, except the
// viewer token inside the dashboard link it prints at start (that log
// already shows more than the dashboard does: see docs/security.md).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dptError } from '../../src/errors.js';

/** Environment variable holding the token when neither --token nor --token-file is given. */
export const TOKEN_ENV = 'DPTRAIN_TOKEN';
/** Environment variable holding the viewer token when neither --viewer-token nor --viewer-token-file is given. */
export const VIEWER_TOKEN_ENV = 'DPTRAIN_VIEWER_TOKEN';

export interface TokenSources {
  token?: string;
  tokenFile?: string;
}

export interface ViewerTokenSources {
  viewerToken?: string;
  viewerTokenFile?: string;
}

/** How errors spell an option given by its camelCase name: the command line's flag by default (the library's train() names its own). */
export type OptionSpelling = (option: string) => string;
const flagOf: OptionSpelling = (option) => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** One secret from an option, a file option or an environment variable (in that order), or '' for none; the options spelled as given. */
function resolveSecret(value: string | undefined, file: string | undefined, names: { value: string; file: string }, envName: string, env: NodeJS.ProcessEnv): string {
  if (value !== undefined && file !== undefined) throw dptError('DPT_ERR_USAGE', `give ${names.value} or ${names.file}, not both`);
  if (value !== undefined) return checkToken(value, names.value);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw dptError('DPT_ERR_USAGE', `${names.file} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return checkToken(text.trim(), `${names.file} ${file}`);
  }
  const fromEnv = env[envName];
  return fromEnv === undefined ? '' : checkToken(fromEnv.trim(), `$${envName}`);
}

/** The token from --token, --token-file or $DPTRAIN_TOKEN (in that order), or '' for none. */
export function resolveToken(src: TokenSources, env: NodeJS.ProcessEnv = process.env, name: OptionSpelling = flagOf): string {
  return resolveSecret(src.token, src.tokenFile, { value: name('token'), file: name('tokenFile') }, TOKEN_ENV, env);
}

/** The viewer token from --viewer-token, --viewer-token-file or $DPTRAIN_VIEWER_TOKEN (in that order), or '' for none. */
export function resolveViewerToken(src: ViewerTokenSources, env: NodeJS.ProcessEnv = process.env, name: OptionSpelling = flagOf): string {
  return resolveSecret(src.viewerToken, src.viewerTokenFile, { value: name('viewerToken'), file: name('viewerTokenFile') }, VIEWER_TOKEN_ENV, env);
}

function checkToken(token: string, where: string): string {
  if (token.length === 0) throw dptError('DPT_ERR_USAGE', `${where}: the token is empty`);
  if (token.length > 1024) throw dptError('DPT_ERR_USAGE', `${where}: the token is longer than 1024 characters`);
  return token;
}

/**
 * Whether `given` equals `expected`, in time that does not depend on where
 * they differ (both are hashed first, so their lengths leak nothing either).
 */
export function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * Why a worker that gave `given` may not join (at hello, and to download
 * the dataset), or null when it may. `token` is the run's ('' lets any
 * worker in), `viewerToken` the read-only one ('' for none): it is refused
 * even in a run without a token, saying which link the volunteer was given.
 */
export function workerTokenProblem(given: string, token: string, viewerToken: string): string | null {
  if (viewerToken !== '' && tokenMatches(given, viewerToken)) {
    return `that is the viewer token (read-only: it opens the dashboard); a worker needs the run's token (--token-file or ${TOKEN_ENV}; a tab, the /join#token=... link)`;
  }
  if (token === '' || tokenMatches(given, token)) return null;
  return given === '' ? `no token given (--token-file or ${TOKEN_ENV})` : 'wrong token';
}
