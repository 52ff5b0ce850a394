// The shared token of a cluster: where it comes from, and how it is compared.
// It is never printed: logs name the peer's address, never what it sent.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dptError } from '../../src/errors.js';

/** Environment variable holding the token when neither --token nor --token-file is given. */
export const TOKEN_ENV = 'DPTRAIN_TOKEN';

export interface TokenSources {
  token?: string;
  tokenFile?: string;
}

/**
 * The token from --token, --token-file or $DPTRAIN_TOKEN (in that order), or
 * '' for none. `name` spells an option in errors (the library's train() names
 * its own: tokenFile).
 */
export function resolveToken(src: TokenSources, env: NodeJS.ProcessEnv = process.env, name = (o: 'token' | 'tokenFile'): string => (o === 'token' ? '--token' : '--token-file')): string {
  if (src.token !== undefined && src.tokenFile !== undefined) throw dptError('DPT_ERR_USAGE', `give ${name('token')} or ${name('tokenFile')}, not both`);
  if (src.token !== undefined) return checkToken(src.token, name('token'));
  if (src.tokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(src.tokenFile, 'utf8');
    } catch (err) {
      throw dptError('DPT_ERR_USAGE', `${name('tokenFile')} ${src.tokenFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return checkToken(text.trim(), `${name('tokenFile')} ${src.tokenFile}`);
  }
  const fromEnv = env[TOKEN_ENV];
  return fromEnv === undefined ? '' : checkToken(fromEnv.trim(), `$${TOKEN_ENV}`);
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
