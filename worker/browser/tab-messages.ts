// What the three parts of a volunteer tab say to each other (postMessage,
// within one tab; the coordinator hears only the protocol of
// src/protocol/messages.ts):
//
//   join page (main thread: shows progress only)
//        │ start {wsUrl, token, kernels, hooks} / leave           ▲ status / log
//        ▼                                                       │
//   tab worker (a dedicated Web Worker: the WebSocket, the protocol, the
//        │      dataset and its IndexedDB copy, heartbeats, reconnects)
//        │ init / session / weights / task                         ▲ ready / result / failed / error
//        ▼                                                       │
//   compute worker (a dedicated Web Worker: the WebAssembly kernels and the
//                   core's range compute, src/train/range.ts)
//
// The socket lives in a worker because a hidden page's timers are throttled
// (to once a minute after a while) and the coordinator drops a worker that
// sends nothing for --peer-timeout-ms; the compute has a worker of its own
// so that a long range never holds up a heartbeat.
import type { Session, Task } from '../../src/protocol/messages.js';
import type { TreeNode } from '../../src/reduce/tree.js';

/** Test hooks, set by a test page before the page's scripts run (globalThis.__dptrainTestHooks); never by a URL. */
export interface TestHooks {
  /** Add this to element 0 of every answer's first block: a lying tab, for the quarantine test. */
  tamper?: number;
}

export type PageToTab =
  | { type: 'start'; wsUrl: string; token: string; kernels: 'wasm' | 'ts'; hooks: TestHooks }
  | { type: 'leave' };

export type TabState =
  | 'starting' | 'connecting' | 'downloading' | 'preparing' | 'working' | 'waiting'
  | 'reconnecting' | 'finished' | 'refused' | 'quarantined' | 'left' | 'error';

export interface TabStatus {
  type: 'status';
  state: TabState;
  /** A sentence for the page. */
  detail: string;
  workerId: string | null;
  /** Where the training set came from: the coordinator (bytes downloaded) or this browser's IndexedDB. */
  dataset: { source: 'download' | 'cache'; bytes: number } | null;
  tasks: number;
  microShards: number;
  /** Samples per second of compute over the answered tasks. */
  samplesPerSec: number;
}

export type TabToPage = TabStatus | { type: 'log'; line: string };

export type TabToCompute =
  | { type: 'init'; wasmUrl: string; kernels: 'wasm' | 'ts' }
  | { type: 'session'; key: string; session: Session; dataset: ArrayBuffer }
  | { type: 'weights'; version: number; params: Float32Array }
  | { type: 'task'; task: Task };

export type ComputeToTab =
  | { type: 'initialized'; kernels: string }
  | { type: 'ready'; key: string }
  | { type: 'result'; taskId: number; blocks: TreeNode[]; sums: Float32Array; computeMs: number; samples: number }
  | { type: 'failed'; taskId: number; reason: string }
  | { type: 'error'; message: string };
