// What the simulator models and with which figures: the hosts (a CPU pool
// each, or one shared pool: this machine's cores under a calibration run),
// the links (network.ts), and the costs of the compute (measured with the
// real code: costs.ts) and of moving a message (per message and per byte,
// on the sender's and the receiver's CPU: fitted to the measurements).
import { CpuPool } from './cpu.js';
import { EventQueue } from './events.js';
import { Network } from './network.js';

/** A model at one batch size, as the runs see it. */
export interface Workload {
  model: 'mlp' | 'lstm';
  batch: number;
  /** Micro-shards per batch. */
  k: number;
  /** Floats in a gradient vector, in the weights, trainable among them. */
  gradLen: number;
  size: number;
  numTrainable: number;
  /** One core's time for one micro-shard of `rows` rows (forward + backward into its gradient vector). */
  leafMs: (rows: number) => number;
  /** One core's time per float of a vector addition (the tree's adds), of the update (SGD, statistics), of a bf16 rounding. */
  addMsPerFloat: number;
  applyMsPerFloat: number;
  roundMsPerFloat: number;
}

/** How moving a message costs: the link, and the CPU on both ends. */
export interface WireCosts {
  /** Bytes per ms of every link (the tc rate, times the share that is payload once TCP/IP and WebSocket framing are paid). */
  rate: number;
  /** One way, per message. */
  latencyMs: number;
  /** Bytes a link's shaper lets through at once after a quiet spell (tc tbf's burst; 0: a plain link). */
  burst?: number;
  /** A host's messages leave one after the other (true) or take turns chunk by chunk (false, default). */
  fifo?: boolean;
  /** The coordinator's own work per step besides the modelled (the trainer's bookkeeping, sampling, the event loop), ms. */
  stepMs?: number;
  /** A worker process's own work per step besides the modelled (hashes, setting its weights, the event loop), ms. */
  workerStepMs?: number;
  /** CPU per message on each end (framing, syscalls, event loop) and per byte (copies, the kernel's network stack). */
  msgMs: number;
  byteMs: number;
}

export interface Machine {
  q: EventQueue;
  net: Network;
  cpu: Map<string, CpuPool>;
  wire: WireCosts;
  /** Core-ms of work each host has been given so far (its CPU time, whatever the sharing). */
  cpuMs: Map<string, number>;
}

/**
 * Hosts `coordinator` and w0..w(n-1): with `sharedCores`, every host's work
 * runs on one pool of that many cores (all the processes of a calibration
 * run on this machine, with `background` cores' worth of other users);
 * otherwise each host has `coresPerHost` of its own.
 */
export function machine(workers: number, wire: WireCosts, sharedCores: number | null, coresPerHost = 1, background = 0): Machine {
  const q = new EventQueue();
  const net = new Network(q, wire.rate, wire.latencyMs, wire.burst ?? 0, wire.fifo ?? false);
  const cpu = new Map<string, CpuPool>();
  const shared = sharedCores === null ? null : new CpuPool(q, sharedCores, background);
  for (const h of ['coordinator', ...Array.from({ length: workers }, (_, i) => `w${i}`)]) {
    net.addHost(h);
    cpu.set(h, shared ?? new CpuPool(q, coresPerHost));
  }
  return { q, net, cpu, wire, cpuMs: new Map() };
}

function charge(m: Machine, host: string, ms: number): void {
  m.cpuMs.set(host, (m.cpuMs.get(host) ?? 0) + Math.max(0, ms));
}

/** Sends a message of `bytes` payload bytes: the sender's CPU, the links, the receiver's CPU, then done(). */
export function transfer(m: Machine, from: string, to: string, bytes: number, done: () => void): void {
  const cost = m.wire.msgMs + bytes * m.wire.byteMs;
  charge(m, from, cost);
  m.cpu.get(from)!.run(cost, () => m.net.send(from, to, bytes + FRAME_OVERHEAD, () => { charge(m, to, cost); m.cpu.get(to)!.run(cost, done); }));
}

/** Bytes of a frame's header and of the WebSocket framing, roughly (a task's indices are counted apart). */
export const FRAME_OVERHEAD = 120;

/** Runs `ms` of one core's work on a host. */
export function work(m: Machine, host: string, ms: number, done: () => void): void {
  charge(m, host, ms);
  m.cpu.get(host)!.run(ms, done);
}

export interface RunFigures {
  msPerStep: number;
  coordinatorBytesPerStep: number;
  /** The busiest worker's bytes in and out. */
  workerBytesPerStep: number;
  /** CPU per step (core-ms) of the coordinator and of each worker. */
  cpuMsPerStep: { coordinator: number; workers: number[] };
}

/**
 * Runs warm + steps steps of a simulated run, one after the other: step(s)
 * starts step s and resolves when it is done (the event queue runs
 * meanwhile). The figures are the timed steps': time and bytes per step.
 */
export async function timeSteps(m: Machine, workers: number, steps: number, warm: number, step: (s: number) => Promise<void>): Promise<RunFigures> {
  const hosts = Array.from({ length: workers }, (_, i) => `w${i}`);
  let t0 = 0;
  let c0 = { sent: 0, received: 0 };
  let w0: { sent: number; received: number }[] = [];
  const cpuNow = () => ['coordinator', ...hosts].map((h) => m.cpuMs.get(h) ?? 0);
  let cpu0: number[] = [];
  for (let s = 0; s < warm + steps; s++) {
    if (s === warm) {
      t0 = m.q.now();
      cpu0 = cpuNow();
      c0 = m.net.bytes('coordinator');
      w0 = hosts.map((h) => m.net.bytes(h));
    }
    let done = false;
    void step(s).then(() => { done = true; });
    await m.q.drive(() => done, `step ${s + 1}`);
  }
  const c1 = m.net.bytes('coordinator');
  const busiest = Math.max(...w0.map((b, i) => { const a = m.net.bytes(hosts[i]); return a.sent + a.received - b.sent - b.received; }));
  const cpu = cpuNow().map((x, i) => (x - cpu0[i]) / steps);
  return {
    msPerStep: (m.q.now() - t0) / steps, coordinatorBytesPerStep: (c1.sent + c1.received - c0.sent - c0.received) / steps, workerBytesPerStep: busiest / steps,
    cpuMsPerStep: { coordinator: cpu[0], workers: cpu.slice(1) },
  };
}

/** Runs `ms` of one core's work on a host; resolves when it is done. */
export function worked(m: Machine, host: string, ms: number): Promise<void> {
  return new Promise((resolve) => work(m, host, ms, resolve));
}
