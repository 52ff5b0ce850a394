// `--listen HOST:PORT` and `--connect ws://HOST:PORT`, checked before anything starts.
import { dptError } from '../../src/errors.js';

export interface ListenAddress {
  host: string;
  port: number;
}

/** HOST:PORT, [IPv6]:PORT or :PORT (all interfaces); port 0 picks a free one. `option` names it in errors. */
export function parseListen(value: string, option = '--listen'): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m === null ? NaN : Number(m[3]);
  if (m === null || !(port >= 0 && port <= 65535)) {
    throw dptError('DPT_ERR_USAGE', `${option} must be HOST:PORT (e.g. 0.0.0.0:7070, 127.0.0.1:0, [::1]:7070), got "${value}"`);
  }
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]);
  return { host, port };
}

/** The coordinator's WebSocket URL, with the path /ws added when none is given. */
export function parseConnect(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw dptError('DPT_ERR_USAGE', `--connect must be a URL like ws://HOST:PORT or wss://HOST:PORT, got "${value}"`);
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw dptError('DPT_ERR_USAGE', `--connect: the scheme must be ws: or wss:, got "${url.protocol}"`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/ws';
  return url;
}

/** The http(s) URL of a path on the same server as a ws(s) URL. */
export function httpUrl(ws: URL, path: string): URL {
  const u = new URL(ws.href);
  u.protocol = ws.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = path;
  u.search = '';
  return u;
}

/**
 * Whether a listen host is reachable from this machine only: localhost,
 * 127.0.0.0/8, ::1 (and 127.x as an IPv4-mapped IPv6 address). Anything
 * else, the bind-any 0.0.0.0 and :: included, is on a network.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
