// Links, modelled: every host has one full-duplex port on a switch, of
// `rate` bytes per millisecond each way. A message is cut into chunks;
// a host's egress sends one chunk at a time, taking turns among its queued
// messages (as TCP flows share a NIC); the switch forwards each chunk to
// the destination's port, whose egress toward that host is one FIFO queue
// at the same rate (so many senders into one host queue up there: the
// star's incast at the coordinator); `latency` is added once per message
// hop. CPU costs of sending and receiving are the caller's (model.ts).
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
}

export class Network {
  private readonly ports = new Map<string, Port>();

  constructor(private readonly q: EventQueue, readonly rate: number, readonly latency: number) {}

  addHost(name: string): void {
    this.ports.set(name, { name, out: [], outBusy: false, inQueue: [], inBusy: false, sent: 0, received: 0 });
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
    if (m.remaining > 0) p.out.push(m); // round-robin: back of the line
    p.outBusy = true;
    p.sent += bytes;
    this.q.setTimer(() => {
      p.outBusy = false;
      m.to.inQueue.push({ bytes, message: m });
      this.drain(m.to);
      this.pump(p);
    }, bytes / this.rate);
  }

  private drain(p: Port): void {
    if (p.inBusy || p.inQueue.length === 0) return;
    const { bytes, message } = p.inQueue.shift()!;
    p.inBusy = true;
    p.received += bytes;
    this.q.setTimer(() => {
      p.inBusy = false;
      message.delivered++;
      if (message.delivered === message.chunks) this.q.setTimer(message.done, this.latency);
      this.drain(p);
    }, bytes / this.rate);
  }
}
