// Which web pages may open a WebSocket to the coordinator. Browsers send an
// `Origin` header with every WebSocket handshake and a page cannot forge or
// leave it out, so checking it stops a page on another site from making a
// visitor's browser join (or pester) the run. Programs that are not
// browsers (`dptrain worker`) send none and are let through: they are held
// to the token, which a page on another site does not have either.
import type { IncomingMessage } from 'node:http';
import { dptError } from '../../src/errors.js';

/** `--allow-origin URL`: the origin (scheme://host[:port]) of a URL, checked. */
export function parseAllowedOrigin(value: string, option = '--allow-origin'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw dptError('DPT_ERR_USAGE', `${option} must be a URL like https://example.org or http://10.0.0.5:7070, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw dptError('DPT_ERR_USAGE', `${option}: the scheme must be http: or https:, got "${url.protocol}"`);
  }
  return url.origin;
}

/**
 * Null when the request may go on, else why not. Allowed: no Origin (not a
 * browser), the coordinator's own origin (the scheme it serves and the Host
 * the browser asked for: the pages it serves itself), and `allowed`.
 */
export function originProblem(req: IncomingMessage, tls: boolean, allowed: ReadonlySet<string>): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  let given: string;
  try {
    given = new URL(origin).origin;
  } catch {
    return `origin ${JSON.stringify(origin.slice(0, 100))} is not a URL`;
  }
  const host = req.headers.host;
  if (host !== undefined) {
    try {
      if (new URL(`${tls ? 'https' : 'http'}://${host}`).origin === given) return null;
    } catch {
      // A malformed Host: only an explicitly allowed origin can pass.
    }
  }
  if (allowed.has(given)) return null;
  return `origin ${given} is not allowed (the coordinator's own pages are; add others with --allow-origin)`;
}
