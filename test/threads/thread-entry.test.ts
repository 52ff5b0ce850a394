// The worker entry validates every message it receives (here called
// directly, outside a thread: a bad order is a thrown DPT_ERR_MESSAGE, which
// the serve loop answers as an `error` reply, a failed order).
import { describe, expect, it } from 'vitest';
import runTask, { runOrder } from '../../node/threads/thread-entry.js';
import { THREAD_PROTOCOL_VERSION } from '../../node/threads/protocol.js';

const order = {
  taskId: 1, version: 1, step: 0, k: 4, rows: 8, start: 0, end: 2, indices: new Uint32Array(4), region: 0,
};
const noRegion = () => undefined;

describe('node/threads/thread-entry message validation', () => {
  it('refuses a malformed order, naming the field', () => {
    expect(() => runOrder('s', { ...order, taskId: -1 }, noRegion)).toThrow(/invalid task\ntaskId/);
    expect(() => runOrder('s', { ...order, indices: [1, 2, 3] }, noRegion)).toThrow(/indices/);
    expect(() => runOrder('s', { ...order, region: -1 }, noRegion)).toThrow(/region/);
    expect(() => runOrder('s', { ...order, end: 5 }, noRegion)).toThrow(/range \[0, 5\) is not inside \[0, 4\)/);
    expect(() => runOrder('s', { ...order, extra: 1 }, noRegion)).toThrow(/unknown field/);
    expect(() => runOrder('s', { ...order, fault: { kind: 'explode' } }, noRegion)).toThrow(/fault\.kind/);
    expect(() => runOrder('s', null, noRegion)).toThrow(/DPT_ERR_MESSAGE|invalid task/);
  });

  it('refuses a task of an unknown type, and a malformed serve task', () => {
    expect(() => runTask({ type: 'step' })).toThrow(/unknown task type "step"/);
    expect(() => runTask({ type: 'serve', protocol: THREAD_PROTOCOL_VERSION, session: 's', mailbox: new ArrayBuffer(8), spinUs: 0 }))
      .toThrow(/invalid serve task\n(mailbox|port)/);
  });

  it('refuses to work without a valid setup (workerData)', () => {
    expect(() => runOrder('s', order, noRegion)).toThrow(/invalid setup/);
    expect(() => runTask({ type: 'warmup', protocol: THREAD_PROTOCOL_VERSION, session: 's', barrier: new SharedArrayBuffer(4), threads: 1, timeoutMs: 1 })).toThrow(/invalid setup/);
  });
});
