// Links, modelled: every host has one full-duplex port on a switch, of
// `rate` bytes per millisecond each way. A message is cut into chunks;
// a host's egress sends one chunk at a time, taking turns among its queued
// messages (as TCP flows share a NIC); the switch forwards each chunk to
// the destination's port, whose egress toward that host is one FIFO queue
// at the same rate (so many senders into one host queue up there: the
// star's incast at the coordinator); `latency` is added once per message
// hop. Each direction of a link is a token bucket of `burst` bytes filling
// at `rate`, as the tc tbf shapers of a netns run are (a chunk leaves at
// once while the bucket holds its bytes, so the first `burst` bytes after a
// quiet spell go at memory speed); burst 0 is a plain link at line rate.
// CPU costs of sending and receiving are the caller's (model.ts).
import type { EventQueue } from './events.js';

// Small enough that a switch forwarding whole chunks (store and forward) adds little over one forwarding packets.
const CHUNK = 8 * 1024;

interface Message {
  remaining: number;
  chunks: number;
  delivered: number;
  to: Port;
  done: () => void;
}

interface Port {
  readonly name: string;
  /** Messages with chunks left to send, served round-robin. */
  readonly out: Message[];
  outBusy: boolean;
  /** Chunks waiting at the switch for this host's link. */
  readonly inQueue: { bytes: number; message: Message }[];
  inBusy: boolean;
  sent: number;
  received: number;
  /** Token buckets of the two directions: bytes available, and when last filled. */
  outTokens: number;
  outAt: number;
  inTokens: number;
  inAt: number;
}

export class Network {
  private readonly ports = new Map<string, Port>();

  /** fifo: a host's messages leave one after the other (one socket's write after another's) instead of taking turns. */
  constructor(private readonly q: EventQueue, readonly rate: number, readonly latency: number, readonly burst = 0, readonly fifo = false) {}

  addHost(name: string): void {
    this.ports.set(name, {
      name, out: [], outBusy: false, inQueue: [], inBusy: false, sent: 0, received: 0,
      outTokens: this.burst, outAt: 0, inTokens: this.burst, inAt: 0,
    });
  }

  /** Bytes a host's link has carried each way so far. */
  bytes(name: string): { sent: number; received: number } {
    const p = this.port(name);
    return { sent: p.sent, received: p.received };
  }

  /** Moves `bytes` from one host to another; done() when the last byte is there. */
  send(from: string, to: string, bytes: number, done: () => void): void {
    const src = this.port(from);
    const chunks = Math.max(1, Math.ceil(bytes / CHUNK));
    src.out.push({ remaining: bytes, chunks, delivered: 0, to: this.port(to), done });
    this.pump(src);
  }

  private port(name: string): Port {
    const p = this.ports.get(name);
    if (p === undefined) throw new Error(`no host ${name} on the simulated network`);
    return p;
  }

  private pump(p: Port): void {
    if (p.outBusy || p.out.length === 0) return;
    const m = p.out.shift()!;
    const bytes = Math.min(CHUNK, m.remaining);
    m.remaining -= bytes;
    // Round-robin: back of the line; FIFO: it goes on until it is all out.
    if (m.remaining > 0) { if (this.fifo) p.out.unshift(m); else p.out.push(m); }
    p.outBusy = true;
    p.sent += bytes;
    const wait = this.take(p, 'out', bytes);
    this.q.setTimer(() => {
      p.outBusy = false;
      m.to.inQueue.push({ bytes, message: m });
      this.drain(m.to);
      this.pump(p);
    }, wait);
  }

  private drain(p: Port): void {
    if (p.inBusy || p.inQueue.length === 0) return;
    const { bytes, message } = p.inQueue.shift()!;
    p.inBusy = true;
    p.received += bytes;
    const wait = this.take(p, 'in', bytes);
    this.q.setTimer(() => {
      p.inBusy = false;
      message.delivered++;
      if (message.delivered === message.chunks) this.q.setTimer(message.done, this.latency);
      this.drain(p);
    }, wait);
  }

  /** How long `bytes` wait for the tokens of one direction of p's link; takes them. */
  private take(p: Port, dir: 'out' | 'in', bytes: number): number {
    const now = this.q.now();
    const tokens = Math.min(this.burst, p[`${dir}Tokens`] + (now - p[`${dir}At`]) * this.rate);
    const wait = tokens >= bytes ? 0 : (bytes - tokens) / this.rate;
    p[`${dir}Tokens`] = Math.max(0, tokens - bytes);
    p[`${dir}At`] = now + wait;
    return wait;
  }
}
