// A member's links to its peers in the collective (NOTES-coll.md): a
// WebSocket server on --peer-listen for the frames peers send it, and one
// outgoing connection per peer it sends to (so each direction of a pair is
// one connection, and nobody waits for the other to dial). A link opens
// with peer-hello {token, runId, memberId}: the token is compared in
// constant time as the coordinator does, the run id must be this run's;
// the server answers peer-welcome or refuse. After that, every frame goes
// through the protocol's one decode (sender `peer`, caps from the model)
// and is handed to the member; a frame that does not decode, or that the
// member refuses, closes the link and the peer is reported (onBroken) to
// the coordinator, which drops it.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { decodeFromPeer, encode, type FrameLimits } from '../../src/protocol/codec.js';
import type { Part, Reduced } from '../../src/protocol/collective-messages.js';
import { PROTOCOL_VERSION, type PeerMessage } from '../../src/protocol/messages.js';
import type { ListenAddress } from '../../node/net/address.js';
import { tokenMatches } from '../../node/net/secret.js';

export interface PeerLinksOptions {
  listen: ListenAddress;
  /** A run over TLS: the peer port serves wss with this certificate, and links to peers trust `ca` (absent: the system's CAs). */
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  token: string;
  /** This member's id and its run's id, once the coordinator welcomed it (links are refused before). */
  identity(): { memberId: string; runId: string } | null;
  /** Caps on a peer's frames (from the session's model, once welcomed). */
  limits(): FrameLimits;
  /** A part or reduced slice from a peer: a problem closes the link. */
  onMessage(from: string, message: Part | Reduced): string | null;
  /** A link to or from a peer failed, or the peer sent a bad frame. */
  onBroken(peer: string, reason: string): void;
  log(line: string): void;
}

/** The largest peer frame ws buffers at all (a part of 64 blocks of a 1M-float slice). */
const MAX_PEER_FRAME = 256 << 20;

/** How long a link may take to say hello before it is closed. */
const HELLO_MS = 10_000;

/** Before its hello a link may send nothing big. */
const HELLO_LIMITS: FrameLimits = { maxFrameBytes: 1 << 16 };

interface Outgoing {
  ws: WebSocket;
  open: boolean;
  queue: Uint8Array[];
}

export class PeerLinks {
  private readonly out = new Map<string, Outgoing>();
  private readonly incoming = new Set<WebSocket>();
  /** Bytes sent to and received from peers, frames only. */
  readonly wire = { sent: 0, received: 0 };

  private constructor(private readonly o: PeerLinksOptions, private readonly http: Server, private readonly wss: WebSocketServer, readonly port: number) {
    wss.on('connection', (ws, req) => this.accept(ws, req));
  }

  static async start(o: PeerLinksOptions): Promise<PeerLinks> {
    const notFound = (_req: IncomingMessage, res: import('node:http').ServerResponse) => { res.writeHead(404).end(); };
    const http: Server = o.tls === undefined ? createServer(notFound) : createTlsServer({ cert: o.tls.cert, key: o.tls.key }, notFound);
    // ws refuses a frame past this before buffering it; decode() then holds each frame to the model's caps.
    const wss = new WebSocketServer({ server: http, path: '/peer', maxPayload: MAX_PEER_FRAME, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(o.listen.port, o.listen.host, () => resolve());
    });
    return new PeerLinks(o, http, wss, (http.address() as AddressInfo).port);
  }

  /** Sends a frame to a peer at `address` (host:port), dialing it first if needed; frames wait until the link is open. */
  send(peer: string, address: string, frame: Uint8Array): void {
    let link = this.out.get(peer);
    if (link === undefined || link.ws.readyState >= WebSocket.CLOSING) link = this.dial(peer, address);
    if (link.open) this.write(link.ws, frame);
    else link.queue.push(frame);
  }

  /**
   * Closes every link, both ways: this member has a new identity (the
   * coordinator welcomed it again under another id), and a link says who
   * its sender is once, at its hello.
   */
  reset(): void {
    for (const l of this.out.values()) l.ws.terminate();
    this.out.clear();
    for (const ws of this.incoming) ws.terminate();
  }

  /** Closes every link (the run is over, or the member leaves). */
  async close(): Promise<void> {
    for (const l of this.out.values()) l.ws.terminate();
    for (const ws of this.incoming) ws.terminate();
    this.out.clear();
    this.wss.close();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private write(ws: WebSocket, frame: Uint8Array): void {
    this.wire.sent += frame.length;
    ws.send(frame);
  }

  private dial(peer: string, address: string): Outgoing {
    const id = this.o.identity();
    const tls = this.o.tls;
    const ws = new WebSocket(`${tls === undefined ? 'ws' : 'wss'}://${address}/peer`, {
      maxPayload: 1 << 16, perMessageDeflate: false, handshakeTimeout: HELLO_MS,
      ...(tls?.ca === undefined ? {} : { ca: tls.ca }),
      // As the worker's own connection: a process need not mask (ws skips an all-zero mask).
      generateMask: (mask: Buffer) => { mask.fill(0); },
    });
    const link: Outgoing = { ws, open: false, queue: [] };
    this.out.set(peer, link);
    let failed = false;
    const fail = (reason: string) => {
      if (failed) return;
      failed = true;
      if (this.out.get(peer) === link) this.out.delete(peer);
      ws.terminate();
      this.o.onBroken(peer, reason);
    };
    ws.on('open', () => {
      if (id === null) { fail('this member has no identity yet'); return; }
      ws.send(encode({ type: 'peer-hello', protocol: PROTOCOL_VERSION, token: this.o.token, runId: id.runId, memberId: id.memberId }));
    });
    ws.on('message', (data: Buffer) => {
      let m: PeerMessage;
      try {
        m = decodeFromPeer(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), { maxFrameBytes: 1 << 16 });
      } catch (err) {
        fail(`its answer to peer-hello: ${(err as Error).message}`);
        return;
      }
      if (m.type === 'refuse') { fail(`refused the link: ${m.reason}`); return; }
      if (m.type !== 'peer-welcome' || m.memberId !== peer) { fail(`answered peer-hello with ${m.type}${m.type === 'peer-welcome' ? ` as ${m.memberId}` : ''}`); return; }
      link.open = true;
      for (const f of link.queue) this.write(ws, f);
      link.queue.length = 0;
    });
    ws.on('error', (err) => fail(`link to ${address}: ${err.message}`));
    ws.on('close', () => { if (!failed && this.out.get(peer) === link) { this.out.delete(peer); if (link.queue.length > 0) fail(`link to ${address} closed`); } });
    return link;
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const address = req.socket.remoteAddress ?? '?';
    this.incoming.add(ws);
    let from: string | null = null;
    const timer = setTimeout(() => { this.o.log(`peer link from ${address}: no peer-hello within ${HELLO_MS} ms; closed`); ws.terminate(); }, HELLO_MS);
    const close = (reason: string) => {
      clearTimeout(timer);
      this.o.log(`closing the peer link from ${from ?? address}: ${reason}`);
      if (from !== null) this.o.onBroken(from, reason);
      ws.close(1008, Buffer.from(reason).subarray(0, 120).toString());
      setTimeout(() => ws.terminate(), 2000).unref();
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.wire.received += data.length;
      if (!isBinary) { close('sent a text frame'); return; }
      let m: PeerMessage;
      try {
        m = decodeFromPeer(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), from === null ? HELLO_LIMITS : this.o.limits());
      } catch (err) {
        close(`bad frame: ${(err as Error).message}`);
        return;
      }
      if (from === null) {
        clearTimeout(timer);
        if (m.type !== 'peer-hello') { close(`sent ${m.type} before peer-hello`); return; }
        const id = this.o.identity();
        const refusal = id === null ? 'this member has not joined the run yet'
          : m.protocol !== PROTOCOL_VERSION ? `protocol version ${m.protocol}, this member speaks ${PROTOCOL_VERSION}`
            : this.o.token !== '' && !tokenMatches(m.token, this.o.token) ? (m.token === '' ? 'no token' : 'wrong token')
              : m.runId !== id.runId ? `run ${m.runId.slice(0, 16)}, this member's is ${id.runId.slice(0, 16)}` : null;
        if (refusal !== null) {
          this.o.log(`refused a peer link from ${address}: ${refusal}`);
          ws.send(encode({ type: 'refuse', code: refusal.includes('token') ? 'token' : refusal.startsWith('protocol') ? 'protocol' : 'message', reason: refusal, retry: false }));
          ws.close(1008, 'refused');
          return;
        }
        from = m.memberId;
        ws.send(encode({ type: 'peer-welcome', memberId: id!.memberId }));
        return;
      }
      if (m.type !== 'part' && m.type !== 'reduced') { close(`sent ${m.type} on an open link`); return; }
      const problem = this.o.onMessage(from, m);
      if (problem !== null) close(problem);
    });
    ws.on('error', (err) => { if (from !== null) this.o.onBroken(from, `link from ${address}: ${err.message.includes('Max payload') ? `a frame over the limit of ${MAX_PEER_FRAME} bytes` : err.message}`); });
    ws.on('close', () => { clearTimeout(timer); this.incoming.delete(ws); });
  }
}
