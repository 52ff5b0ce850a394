// One connection's conversation with the coordinator, the same for a
// `dptrain worker` process (worker/net-worker.ts) and a volunteer tab
// (worker/browser/tab-worker.ts). The shells keep only their I/O: the
// socket (a Wire), where the dataset comes from, what computes, and what a
// `crash` fault does. docs/PROTOCOL.md describes the protocol; per
// connection:
//
//   1. open: hello {protocol, token, kind, kernels, threads, host, ...}
//   2. welcome: the session's hash is checked against the one the
//      coordinator sent; the shell prepares it (dataset by hash, model);
//      then ready. A heartbeat goes out every welcome.heartbeatMs, and a
//      coordinator heard of for SILENT_HEARTBEATS heartbeats is taken for
//      gone: the connection is cut, the shell reconnects.
//   3. weights -> the shell; task -> the shell computes the range's aligned
//      blocks -> result (or failed). A new task, a lost connection or a
//      stop abandons the one in progress (the coordinator gave it to
//      someone else).
//   4. refuse / bye: how the connection ends (finished, refused for good,
//      or lost: reconnect), returned by closed().
//
// Every frame goes through the protocol's one decode (src/protocol/codec.ts);
// an undecodable frame closes the connection. Pure: no Node, no DOM.
import { decode, decodeFromCoordinator, encode, FROM_COORDINATOR_LIMITS } from '../../src/protocol/codec.js';
import type { Commit, Order, Part, Reduced, Replica } from '../../src/protocol/collective-messages.js';
import { hashJson } from '../../src/protocol/content-hash.js';
import { DptrainError, type ErrorCode } from '../../src/errors.js';
import { garbledFrame } from '../../src/protocol/faults.js';
import {
  PROTOCOL_VERSION, type ByeCode, type ConductorMessage, type CoordinatorMessage, type Hello, type MemberMessage, type RefusalCode, type Task, type Welcome, type WorkerMessage,
} from '../../src/protocol/messages.js';

/** The shell's socket. */
export interface Wire {
  send(frame: Uint8Array): void;
  /** An orderly close. */
  close(code: number, reason: string): void;
  /** Cut at once (a tab can only close). */
  terminate(): void;
  isOpen(): boolean;
}

/** One task's answer: the aligned blocks of its range and their sums, blocks x gradLen floats. */
export interface Computed {
  readonly blocks: readonly { level: number; index: number }[];
  readonly sums: Float32Array;
  /** The compute's own time; the session's elapsed time if absent. */
  readonly computeMs?: number;
}

/** What the session needs of its shell. */
export interface SessionShell {
  /** Hello's fields that depend on the shell. */
  readonly hello: Omit<Hello, 'type' | 'protocol'>;
  log(line: string): void;
  /** Gets a welcome's session ready to compute (dataset, model); throws when this worker cannot take part. */
  prepare(welcome: Welcome, configHash: string): Promise<void>;
  /** Takes weights of a version; throws when they do not fit the session (the connection is cut). */
  setWeights(version: number, params: Float32Array): void;
  /** Computes a task's aligned-block sums; `signal` aborts when the answer is no longer wanted. */
  compute(task: Task, signal: AbortSignal): Promise<Computed>;
  /** The `crash` fault: a process exits, a tab drops the connection. */
  crash(task: Task, wire: Wire): void;
  /** What the session did, for the shell's status (a tab's page, a worker's /readyz). */
  event?(e: SessionEvent): void;
  /**
   * A process that can be a member of the collective (hello.peer): the
   * collective's messages from the coordinator go here (and the connection
   * decodes as a member's).
   */
  collective?(message: Order | Commit | Reduced | Part | Replica): void;
}

export type SessionEvent =
  | { type: 'welcomed'; welcome: Welcome }
  | { type: 'ready'; welcome: Welcome }
  | { type: 'task'; task: Task }
  | { type: 'answered'; task: Task; computeMs: number }
  | { type: 'bye'; code: ByeCode; reason: string }
  | { type: 'refused'; code: RefusalCode; reason: string; retry: boolean };

/** How a connection ended, for the shell to decide what comes next. */
export type SessionEnd =
  /** The run is finished (bye `finished`, or refused because it is). */
  | { kind: 'finished' }
  /** Refused for good (token, protocol, kernels, quarantined, config, dataset). */
  | { kind: 'refused'; code: RefusalCode; reason: string }
  /** This worker cannot take part in the session (its hash, its dataset, its model). */
  | { kind: 'failed'; reason: string; code?: ErrorCode }
  /** Lost, or refused for now: reconnect. */
  | { kind: 'lost'; welcomed: boolean };

/** Heartbeats' worth of silence (no frame, no ping) after which the coordinator is taken for gone. */
export const SILENT_HEARTBEATS = 15;

/** Resolves after ms, or as soon as the signal aborts. */
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

export class WorkerSession {
  private welcomed = false;
  private end: SessionEnd | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private lastHeard = performance.now();
  /** The weights version the shell holds (-1: none on this connection yet). */
  private version = -1;
  private task: { id: number; abort: AbortController } | null = null;
  private tasksDone = 0;
  private ended = false;

  constructor(private readonly wire: Wire, private readonly shell: SessionShell) {}

  /** The socket is open: say hello. */
  opened(): void {
    this.send({ type: 'hello', protocol: PROTOCOL_VERSION, ...this.shell.hello });
  }

  /** Something came from the coordinator's side without a frame (a ws ping). */
  heard(): void {
    this.lastHeard = performance.now();
  }

  /** The task being computed, if any (a stop hands it back). */
  taskInProgress(): number | null {
    return this.task?.id ?? null;
  }

  /** Whether the coordinator welcomed this connection. */
  isWelcomed(): boolean {
    return this.welcomed;
  }

  /** A frame: decoded (text or anything invalid closes the connection) and handled. */
  frame(data: Uint8Array | string): void {
    this.lastHeard = performance.now();
    if (typeof data === 'string') {
      this.shell.log('the coordinator sent a text frame; closing');
      this.wire.terminate();
      return;
    }
    let msg: CoordinatorMessage | ConductorMessage;
    try {
      msg = this.shell.collective === undefined
        ? decodeFromCoordinator(data, FROM_COORDINATOR_LIMITS)
        : decode(data, 'conductor', FROM_COORDINATOR_LIMITS) as ConductorMessage;
    } catch (err) {
      this.shell.log(`closing: ${(err as Error).message}`);
      this.wire.terminate();
      return;
    }
    this.onMessage(msg);
  }

  /** Leaves the run: bye (the coordinator reassigns the task in progress at once), then close. */
  leave(reason: string): void {
    this.task?.abort.abort();
    if (!this.wire.isOpen()) return;
    this.send({ type: 'bye', code: 'leaving', reason });
    this.wire.close(1000, 'leaving');
  }

  /** The socket closed: the timers stop, the task in progress is abandoned; how it ended. */
  closed(): SessionEnd {
    this.ended = true;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.task?.abort.abort();
    this.task = null;
    return this.end ?? { kind: 'lost', welcomed: this.welcomed };
  }

  private send(m: WorkerMessage): void {
    if (this.wire.isOpen()) this.wire.send(encode(m));
  }

  /** A member's message to the coordinator (the collective); `frame`: its encoding, when the caller has it already. */
  sendMember(m: MemberMessage, frame?: Uint8Array): void {
    if (this.wire.isOpen()) this.wire.send(frame ?? encode(m));
  }

  private onMessage(msg: CoordinatorMessage | ConductorMessage): void {
    const { shell } = this;
    switch (msg.type) {
      case 'order':
      case 'commit':
      case 'reduced':
      case 'part':
      case 'replica':
        shell.collective?.(msg);
        return;
      case 'welcome':
        this.onWelcome(msg);
        return;
      case 'refuse':
        // Refused for good, the shell says so as it ends (an error line, the tab's state); for now, here.
        if (msg.retry) shell.log(`refused for now: ${msg.reason}`);
        if (!msg.retry) this.end = msg.code === 'finished' ? { kind: 'finished' } : { kind: 'refused', code: msg.code, reason: msg.reason };
        shell.event?.({ type: 'refused', code: msg.code, reason: msg.reason, retry: msg.retry });
        return;
      case 'weights':
        try {
          shell.setWeights(msg.version, msg.params);
        } catch (err) {
          shell.log(`closing: ${(err as Error).message}`);
          this.wire.terminate();
          return;
        }
        this.version = msg.version;
        return;
      case 'task':
        void this.onTask(msg);
        return;
      case 'alive':
        return;
      case 'bye':
        shell.log(`the coordinator says bye: ${msg.reason}`);
        if (msg.code === 'finished') this.end = { kind: 'finished' };
        shell.event?.({ type: 'bye', code: msg.code, reason: msg.reason });
        return;
    }
  }

  private onWelcome(w: Welcome): void {
    this.welcomed = true;
    this.version = -1; // a new connection: the weights come again
    this.shell.event?.({ type: 'welcomed', welcome: w });
    const deadAfterMs = w.heartbeatMs * SILENT_HEARTBEATS;
    this.lastHeard = performance.now();
    this.heartbeat = setInterval(() => {
      const silent = performance.now() - this.lastHeard;
      if (silent > deadAfterMs) {
        this.shell.log(`the coordinator has been silent for ${Math.round(silent)} ms; reconnecting`);
        this.wire.terminate();
        return;
      }
      this.send({ type: 'heartbeat', tasksDone: this.tasksDone, busy: this.task !== null });
    }, w.heartbeatMs);
    void this.prepare(w).catch((err: Error) => {
      // The shell says why as it ends (closed() returns it), with the error's code if it has one.
      this.end = { kind: 'failed', reason: err.message, ...(err instanceof DptrainError ? { code: err.code } : {}) };
      this.wire.close(1000, 'cannot take part');
    });
  }

  private async prepare(w: Welcome): Promise<void> {
    const configHash = hashJson(w.session);
    if (configHash !== w.configHash) {
      throw new Error(`the session hashes to ${configHash.slice(0, 12)}, the coordinator says ${w.configHash.slice(0, 12)}`);
    }
    await this.shell.prepare(w, configHash);
    // Only if the connection still stands: it may have closed while the dataset came.
    if (this.ended || !this.wire.isOpen()) return;
    this.send({ type: 'ready', configHash, datasetHash: w.dataset.hash });
    this.shell.event?.({ type: 'ready', welcome: w });
  }

  private async onTask(t: Task): Promise<void> {
    // The coordinator sends a task only to an idle worker: one still running here was given up on there.
    this.task?.abort.abort();
    if (this.version !== t.version) {
      this.send({ type: 'failed', taskId: t.taskId, reason: `no weights for version ${t.version} (holds ${this.version})` });
      return;
    }
    const mine = { id: t.taskId, abort: new AbortController() };
    this.task = mine;
    const signal = mine.abort.signal;
    this.shell.event?.({ type: 'task', task: t });
    const t0 = performance.now();
    try {
      if (t.fault?.kind === 'stall') {
        this.shell.log(`chaos: stalling task ${t.taskId} for ${t.fault.ms ?? 0} ms`);
        await delay(t.fault.ms ?? 0, signal);
        if (signal.aborted) return;
      }
      const c = await this.shell.compute(t, signal);
      if (signal.aborted || this.ended) return;
      if (this.carryOutFault(t, c)) return;
      const computeMs = c.computeMs ?? performance.now() - t0;
      this.send({
        type: 'result', taskId: t.taskId, version: t.version, computeMs,
        blocks: c.blocks.map((b) => ({ level: b.level, index: b.index })), sums: c.sums,
      });
      this.tasksDone++;
      this.shell.event?.({ type: 'answered', task: t, computeMs });
    } catch (err) {
      if (!signal.aborted && !this.ended) this.send({ type: 'failed', taskId: t.taskId, reason: (err as Error).message.slice(0, 1000) });
    } finally {
      if (this.task === mine) this.task = null;
    }
  }

  /** `--chaos` orders after the compute (tests and demonstrations). True when no answer is to be sent. */
  private carryOutFault(t: Task, c: Computed): boolean {
    switch (t.fault?.kind) {
      case 'crash':
        this.shell.crash(t, this.wire);
        return true;
      case 'disconnect':
        this.shell.log(`chaos: disconnecting in the middle of task ${t.taskId}`);
        this.wire.terminate();
        return true;
      case 'throw':
        throw new Error(`chaos: task ${t.taskId} throws in the middle of its range`);
      case 'garble':
        if (this.wire.isOpen()) this.wire.send(garbledFrame(t.taskId));
        return true;
      case 'corrupt':
        c.sums[t.fault.index ?? 0] += 1;
        return false;
      default:
        return false;
    }
  }
}
