// The guards before a WebSocket is accepted (browsers can be made to open
// one to any address, so these run before anything is read): the path
// (/ws only), the Origin check (node/net/origin.ts) and the per-address
// connection limit (node/net/address-limit.ts). A refusal is a plain HTTP
// answer on the raw socket, saying why.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { pathOf } from '../../../node/http/server.js';
import type { AddressLimit } from '../../../node/net/address-limit.js';
import { originProblem } from '../../../node/net/origin.js';
import type { RefusalCode } from '../../../src/protocol/messages.js';

export interface UpgradeGuards {
  /** Whether the server speaks TLS (the scheme of its own origin). */
  tls: boolean;
  /** Origins besides the coordinator's own whose pages may connect. */
  allowOrigins: ReadonlySet<string>;
  addressLimit?: AddressLimit;
  log(line: string): void;
  onRefused?: (code: RefusalCode | 'message' | 'origin', address: string) => void;
}

/** A plain HTTP refusal on an upgrade request's socket. */
function reject(socket: Duplex, status: string, body: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

/**
 * Checks an upgrade request; on a refusal answers it and returns null, else
 * the function that releases the address's connection slot (call it when
 * the socket closes).
 */
export function admitUpgrade(req: IncomingMessage, socket: Duplex, g: UpgradeGuards): (() => void) | null {
  if (pathOf(req) !== '/ws') {
    reject(socket, '404 Not Found', `no WebSocket at ${pathOf(req)}\n`);
    return null;
  }
  const address = req.socket.remoteAddress ?? '?';
  const bad = originProblem(req, g.tls, g.allowOrigins);
  if (bad !== null) {
    g.log(`refused a WebSocket from ${address}: ${bad}`);
    g.onRefused?.('origin', address);
    reject(socket, '403 Forbidden', `${bad}\n`);
    return null;
  }
  const release = g.addressLimit === undefined ? () => {} : g.addressLimit.acquire(address);
  if (release === null) {
    g.log(`refused a WebSocket from ${address}: ${g.addressLimit!.max} connections from that address are open (--max-connections-per-address)`);
    g.onRefused?.('full', address);
    reject(socket, '429 Too Many Requests', `too many connections from ${address}\n`);
    return null;
  }
  return release;
}
