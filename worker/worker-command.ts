// `dptrain worker`: options in, a NetWorker run, an exit code out. SIGTERM
// and SIGINT ask the worker to finish its task and leave (a second signal
// exits at once): a container engine scaling down loses nothing.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dptError } from '../src/errors.js';
import { defaultCacheDir } from '../node/files/cache-dir.js';
import { parseConnect, parseListen } from '../node/net/address.js';
import { resolveToken, type TokenSources } from '../node/net/secret.js';
import { startWorkerHealth } from './health-server.js';
import { NetWorker } from './net-worker.js';

export interface WorkerFlags extends TokenSources {
  connect: string;
  threads?: number;
  name?: string;
  data?: string;
  cache?: string;
  tlsCa?: string;
  /** HOST:PORT for /healthz and /readyz (container probes); none by default. */
  healthListen?: string;
  /** Seconds to keep trying to reach a coordinator that never welcomed this worker (0: forever). */
  giveUpAfter?: number;
  quiet?: boolean;
}

export async function runWorkerCommand(flags: WorkerFlags, software: string): Promise<number> {
  const url = parseConnect(flags.connect);
  const token = resolveToken(flags);
  const healthListen = flags.healthListen === undefined ? undefined : parseListen(flags.healthListen, '--health-listen');
  let tlsCa: Buffer | undefined;
  if (flags.tlsCa !== undefined) {
    try {
      tlsCa = readFileSync(flags.tlsCa);
    } catch (err) {
      throw dptError('DPT_ERR_USAGE', `--tls-ca ${flags.tlsCa}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  }
  const log = (line: string) => process.stderr.write(`worker: ${line}\n`);
  const worker = new NetWorker({
    url, token, threads: flags.threads ?? availableParallelism(), cacheDir: flags.cache ?? defaultCacheDir(), log, software,
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.data === undefined ? {} : { dataFile: flags.data }),
    ...(tlsCa === undefined ? {} : { tlsCa }),
    ...(flags.giveUpAfter === undefined ? {} : { giveUpAfterMs: flags.giveUpAfter * 1000 }),
  });
  // Up before the first connection: a probe must find a worker that is still looking for its coordinator alive.
  const health = healthListen === undefined ? undefined : await startWorkerHealth(healthListen, () => worker.state());
  if (health !== undefined) log(`health on ${health.url} (/healthz, /readyz)`);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    worker.stop(`${signal} received`);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    return await worker.run();
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await health?.close();
  }
}
