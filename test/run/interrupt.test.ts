// Stop requests (coordinator/interrupt.ts) in-process: the first SIGINT or
// SIGTERM aborts the signal the training loop checks, a second one exits at
// once; unlessAborted abandons the work in flight when the signal aborts.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { handleStopSignals, unlessAborted } from '../../coordinator/run/interrupt.js';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('handleStopSignals', () => {
  it('the first signal aborts (reason: its name) and calls onFirst; a second one exits at once with 128 + its number', () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const listeners = process.listenerCount('SIGINT');
    const seen: string[] = [];
    const stop = handleStopSignals((name) => seen.push(name));
    try {
      process.emit('SIGINT');
      expect(stop.signal.aborted).toBe(true);
      expect(stop.signal.reason).toBe('SIGINT');
      expect(stop.received()).toBe('SIGINT');
      expect(seen).toEqual(['SIGINT']);
      expect(exit).not.toHaveBeenCalled();
      process.emit('SIGINT');
      expect(exit).toHaveBeenCalledWith(130);
      process.emit('SIGTERM');
      expect(exit).toHaveBeenLastCalledWith(143);
      expect(seen).toEqual(['SIGINT']);
    } finally {
      stop.dispose();
    }
    expect(process.listenerCount('SIGINT')).toBe(listeners);
  });
});

describe('unlessAborted', () => {
  it('true when the work ends first; its rejection passes through', async () => {
    const controller = new AbortController();
    await expect(unlessAborted(Promise.resolve(), controller.signal)).resolves.toBe(true);
    await expect(unlessAborted(Promise.reject(new Error('boom')), controller.signal)).rejects.toThrow('boom');
  });

  it('false as soon as the signal aborts; the abandoned work\'s later rejection is swallowed', async () => {
    const controller = new AbortController();
    let fail!: (err: Error) => void;
    const work = new Promise<void>((_resolve, reject) => { fail = reject; });
    const outcome = unlessAborted(work, controller.signal);
    controller.abort('SIGTERM');
    await expect(outcome).resolves.toBe(false);
    fail(new Error('the engine was closed under the step'));
    await expect(unlessAborted(new Promise<void>(() => {}), controller.signal)).resolves.toBe(false);
  });
});
