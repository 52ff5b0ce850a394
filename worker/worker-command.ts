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
  /** HOST:PORT for the collective's peer links (issue 21); none: this worker stays on the star. */
  peerListen?: string;
  /** HOST:PORT peers reach this worker at, when not the --peer-listen address (NAT, containers, pod IPs). */
  advertise?: string;
  /** PEM files for the peer port: a run over TLS (wss://) has its peer links over TLS too. */
  peerTlsCert?: string;
  peerTlsKey?: string;
  quiet?: boolean;
}

/** A PEM file an option names; DPT_ERR_USAGE naming the option when it cannot be read. */
function readPem(file: string, option: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw dptError('DPT_ERR_USAGE', `${option} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

export async function runWorkerCommand(flags: WorkerFlags, software: string): Promise<number> {
  const url = parseConnect(flags.connect);
  const token = resolveToken(flags);
  const healthListen = flags.healthListen === undefined ? undefined : parseListen(flags.healthListen, '--health-listen');
  const peerListen = flags.peerListen === undefined ? undefined : parseListen(flags.peerListen, '--peer-listen');
  if (flags.advertise !== undefined && peerListen === undefined) throw dptError('DPT_ERR_USAGE', '--advertise: give --peer-listen too (the address peers reach is that port\'s)');
  if (flags.advertise !== undefined && !/^[^\s/]+:\d{1,5}$/.test(flags.advertise)) throw dptError('DPT_ERR_USAGE', `--advertise ${flags.advertise}: expected HOST:PORT`);
  if ((flags.peerTlsCert === undefined) !== (flags.peerTlsKey === undefined)) throw dptError('DPT_ERR_USAGE', '--peer-tls-cert and --peer-tls-key go together');
  if (flags.peerTlsCert !== undefined && peerListen === undefined) throw dptError('DPT_ERR_USAGE', '--peer-tls-cert: give --peer-listen too');
  // A run over TLS keeps its peer links over TLS: the members exchange the gradient itself.
  if (peerListen !== undefined && url.protocol === 'wss:' && flags.peerTlsCert === undefined) {
    throw dptError('DPT_ERR_USAGE', '--peer-listen: the run uses TLS (wss://), so the peer links do too: give --peer-tls-cert and --peer-tls-key');
  }
  const peerTls = flags.peerTlsCert === undefined ? undefined : { cert: readPem(flags.peerTlsCert, '--peer-tls-cert'), key: readPem(flags.peerTlsKey!, '--peer-tls-key') };
  const tlsCa = flags.tlsCa === undefined ? undefined : readPem(flags.tlsCa, '--tls-ca');
  const log = (line: string) => process.stderr.write(`worker: ${line}\n`);
  const worker = new NetWorker({
    url, token, threads: flags.threads ?? availableParallelism(), cacheDir: flags.cache ?? defaultCacheDir(), log, software,
    ...(flags.name === undefined ? {} : { name: flags.name }),
    ...(flags.data === undefined ? {} : { dataFile: flags.data }),
    ...(tlsCa === undefined ? {} : { tlsCa }),
    ...(flags.giveUpAfter === undefined ? {} : { giveUpAfterMs: flags.giveUpAfter * 1000 }),
    ...(peerListen === undefined ? {} : {
      peer: { listen: peerListen, ...(flags.advertise === undefined ? {} : { advertise: flags.advertise }), ...(peerTls === undefined ? {} : { tls: peerTls }) },
    }),
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
