// Stop requests. The training loop takes an AbortSignal and checks it
// between steps (trainer.ts: the step in flight is abandoned, a checkpoint
// written, the run returns as interrupted). Here the signal is wired to the
// process's SIGINT and SIGTERM; a coordinator serving network workers can
// abort the same signal for its own reasons.
//   first SIGINT/SIGTERM: abort the signal (the run stops cleanly);
//   a second one:         exit at once (130 for SIGINT, 143 for SIGTERM).

/** 128 + the signal's number: the exit code a shell reports for a process ended by it. */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
export type StopSignalName = keyof typeof SIGNAL_EXIT_CODES;

export interface StopSignals {
  /** Aborted at the first SIGINT or SIGTERM; its reason is the signal's name. */
  readonly signal: AbortSignal;
  /** The first signal received, or null. */
  received(): StopSignalName | null;
  /** Removes the handlers: later signals act as Node's defaults. */
  dispose(): void;
}

/** Handles SIGINT and SIGTERM as stop requests; `onFirst` runs at the first one (to say what happens now). */
export function handleStopSignals(onFirst: (name: StopSignalName) => void = () => {}): StopSignals {
  const controller = new AbortController();
  let first: StopSignalName | null = null;
  const handlers = (Object.keys(SIGNAL_EXIT_CODES) as StopSignalName[]).map((name) => {
    const handler = () => {
      if (first !== null) {
        process.exit(SIGNAL_EXIT_CODES[name]);
        return; // (only where exit is stubbed, as in tests)
      }
      first = name;
      onFirst(name);
      controller.abort(name);
    };
    process.on(name, handler);
    return { name, handler };
  });
  return {
    signal: controller.signal,
    received: () => first,
    dispose: () => { for (const { name, handler } of handlers) process.off(name, handler); },
  };
}

/**
 * Waits for `work` unless `signal` aborts first: true when the work is done,
 * false when it was abandoned. The abandoned work's own outcome is ignored
 * (its rejection too: whoever started it closes what it runs on).
 */
export function unlessAborted(work: Promise<void>, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal === undefined) return work.then(() => true);
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.resolve(false);
  }
  return new Promise<boolean>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      () => { signal.removeEventListener('abort', onAbort); resolve(true); },
      (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(err); },
    );
  });
}
