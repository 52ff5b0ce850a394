// The Piscina side of the thread transport: what is not the hot loop.
// Starting N threads with the run's setup in their workerData, building the
// model in each before the first step (one warm-up task per thread, held at
// a barrier until all have arrived, so thread start-up never counts against
// the step timeout), and replacing a thread that dies (Piscina does).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { dptError } from '../../src/errors.js';
import { decodeThreadMessage, malformed, ReadyReply, THREAD_PROTOCOL_VERSION, type ThreadSetup, type WarmupTask } from './protocol.js';

/** dist/node/threads/thread-entry.js, beside this file in dist/ (the CLI), or from node/threads (tests run the TS sources). */
export function threadWorkerFile(): string {
  const candidates = [
    new URL('./thread-entry.js', import.meta.url),
    new URL('../../dist/node/threads/thread-entry.js', import.meta.url),
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error('dist/node/threads/thread-entry.js not found: run `npm run build`');
}

/**
 * A pool of exactly `threads` resident threads, each warmed up (its session
 * built) before this resolves. `isClosed` silences the pool's error events
 * once the transport is closing.
 */
export async function startPool(setup: ThreadSetup, threads: number, log: (line: string) => void, isClosed: () => boolean): Promise<Piscina> {
  const pool = new Piscina({
    filename: threadWorkerFile(),
    minThreads: threads, maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: 2 ** 31 - 1,
    workerData: setup,
    recordTiming: false,
  });
  // A thread dying outside a task must not take the coordinator down: Piscina replaces it.
  pool.on('error', (err: Error) => { if (!isClosed()) log(`worker thread error: ${err.message}; the pool replaces the thread`); });

  const barrier = new SharedArrayBuffer(4);
  const warm: WarmupTask = {
    type: 'warmup', protocol: THREAD_PROTOCOL_VERSION, session: setup.session, barrier, threads, timeoutMs: 60_000,
  };
  let replies: unknown[];
  try {
    replies = await Promise.all(Array.from({ length: threads }, () => pool.run(warm)));
  } catch (err) {
    await pool.destroy();
    throw dptError('DPT_ERR_WORKER', `worker threads did not start: ${(err as Error).message}`);
  }
  for (const raw of replies) {
    const ready = decodeThreadMessage(ReadyReply, raw);
    if (!ready.ok) {
      await pool.destroy();
      throw dptError('DPT_ERR_WORKER', `worker threads did not start: ${malformed('ready reply', ready.problems)}`);
    }
    if (!ready.value.complete) log(`worker threads: only ${Atomics.load(new Int32Array(barrier), 0)} of ${threads} started within 60 s; continuing`);
  }
  return pool;
}
