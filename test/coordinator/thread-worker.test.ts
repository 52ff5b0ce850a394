// The worker entry validates every message it receives (here called
// directly, outside a thread: a bad message is a thrown DPT_ERR_MESSAGE,
// which Piscina turns into a failed task).
import { describe, expect, it } from 'vitest';
import runTask from '../../worker/thread-worker.js';
import { THREAD_PROTOCOL_VERSION } from '../../worker/thread-protocol.js';

const task = {
  type: 'step', protocol: THREAD_PROTOCOL_VERSION, session: 's', taskId: 1, version: 1, step: 0,
  k: 4, rows: 8, start: 0, end: 2, indices: new Uint32Array(4), region: new SharedArrayBuffer(64),
};

describe('worker/thread-worker message validation', () => {
  it('refuses a malformed task, naming the field', () => {
    expect(() => runTask({ ...task, taskId: -1 })).toThrow(/invalid task\ntaskId/);
    expect(() => runTask({ ...task, indices: [1, 2, 3] })).toThrow(/indices/);
    expect(() => runTask({ ...task, region: new ArrayBuffer(64) })).toThrow(/region: expected a SharedArrayBuffer/);
    expect(() => runTask({ ...task, end: 5 })).toThrow(/range \[0, 5\) is not inside \[0, 4\)/);
    expect(() => runTask({ ...task, extra: 1 })).toThrow(/unknown field/);
    expect(() => runTask({ ...task, fault: { kind: 'explode' } })).toThrow(/fault\.kind/);
    expect(() => runTask(null)).toThrow(/DPT_ERR_MESSAGE|invalid task/);
  });

  it('refuses to work without a valid setup (workerData)', () => {
    expect(() => runTask(task)).toThrow(/invalid setup/);
    expect(() => runTask({ type: 'warmup', protocol: THREAD_PROTOCOL_VERSION, session: 's', barrier: new SharedArrayBuffer(4), threads: 1, timeoutMs: 1 })).toThrow(/invalid setup/);
  });
});
