// `npm run bench:cluster`: training samples/s of the same step sequence in
// the coordinator's own thread (`inproc`, --workers 0), on 2 worker threads
// (`threads`) and on 2 `dptrain worker` processes over WebSockets (`ws`),
// for the MLP 784-128-10 (batch 256) and the row LSTM (hidden 128, batch
// 64). All engines are built first (threads and worker processes started,
// connected, holding the model, and warmed up: --warmup-ms of untimed
// steps, 3 s by default, so that every isolate has compiled its code), then
// they take turns in rounds; the
// figure is the best round (other work on the machine only slows a round
// down), the median is printed too. Bytes on the wire per step and where a
// step's time goes (coordinator: broadcast, waiting, reduction, SGD; the
// workers' own compute) are reported for the ws runs.
//
//   node dist/bench/cluster.js [--json] [--only mlp,lstm] [--rounds R] [--steps-mlp N] [--steps-lstm N]
//        [--warmup-ms MS] [--netns RATE] [--listen HOST:PORT --external-workers]
//
// --netns RATE (root): the two workers run in network namespaces of their
// own behind veth links shaped with tc tbf to RATE (e.g. 1gbit), the
// coordinator on the bridge's address, as separate hosts of a LAN would.
// --listen/--external-workers: listen there and wait for 2 workers started
// by hand instead of spawning them.
//
// With --json the last line of stdout is {"results": [{"model", "batch",
// "transport", "workers", "samplesPerSec", "bytesPerStep"}], "ratios", "split"}.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readConfigFile, type TrainConfig } from '../coordinator/run/config.js';
import { loadTrainData } from '../coordinator/data/load.js';
import { chooseEngine } from '../coordinator/engines/choose.js';
import { parseListen } from '../node/net/address.js';
import { buildTrainModel, createStepper } from '../coordinator/run/stepper.js';
import { median, runSteps, warmUp, type Round, type Runner } from './rounds.js';
import { allocFloats } from '../src/tensor/alloc.js';
import { gradLength } from '../src/train/step.js';
import { setupKernels } from '../node/kernels/setup.js';
import { COORDINATOR_IP, netnsProblem, VirtualLan, type Host } from './virtual-lan.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${ROOT}bin/dptrain.js`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Bench { model: 'mlp' | 'lstm'; config: string; batch: number; steps: number }
const BENCHES: Bench[] = [
  { model: 'mlp', config: 'examples/mnist-mlp.json', batch: 256, steps: Number(arg('--steps-mlp') ?? 40) },
  { model: 'lstm', config: 'examples/mnist-lstm.json', batch: 64, steps: Number(arg('--steps-lstm') ?? 8) },
];
const ROUNDS = Number(arg('--rounds') ?? 6);
const WARMUP = 3;
/** Untimed milliseconds every engine runs first (--warmup-ms): see warmUp. */
const WARMUP_MS = Number(arg('--warmup-ms') ?? 3000);
const json = process.argv.includes('--json');
const only = arg('--only')?.split(',');
const netnsRate = arg('--netns');
const listen = arg('--listen') ?? (netnsRate === undefined ? '127.0.0.1:0' : `${COORDINATOR_IP}:0`);
const external = process.argv.includes('--external-workers');
let lan: VirtualLan | null = null;
const hosts: Host[] = [];
if (netnsRate !== undefined) {
  const problem = netnsProblem();
  if (problem !== null) throw new Error(`--netns: ${problem}`);
  lan = new VirtualLan(`b${process.pid % 1000}`);
  for (const name of ['a', 'b']) {
    const h = lan.addHost(name);
    lan.shape(h, netnsRate);
    hosts.push(h);
  }
  process.on('exit', () => lan?.destroy());
}
const kernelName = setupKernels('wasm');
const log = (line: string) => { if (!json || process.env.DPTRAIN_BENCH_VERBOSE) process.stderr.write(line + '\n'); };

type Transport = 'inproc' | 'threads' | 'ws';

interface ClusterRunner extends Runner {
  transport: Transport;
  procs: ChildProcess[];
}

/** Untimed steps at the start of every round (see rounds.ts). */
const LEAD = 3;

/** Spawns the worker processes once the coordinator says where it listens. */
function workerSpawner(count: number, procs: ChildProcess[]): (line: string) => void {
  return (line) => {
    log(line);
    const m = /listening on (ws:\/\/\S+)/.exec(line);
    if (m === null || external) return;
    for (let i = 0; i < count; i++) {
      const argv = [...(hosts[i]?.exec ?? []), process.execPath, BIN, 'worker', '--connect', m[1], '--threads', '1', '--name', `bench-${i}`];
      const child = spawn(argv[0], argv.slice(1), {
        cwd: ROOT, stdio: ['ignore', 'ignore', process.env.DPTRAIN_BENCH_VERBOSE ? 'inherit' : 'ignore'],
      });
      procs.push(child);
    }
  };
}

async function makeRunner(b: Bench, config: TrainConfig, data: Awaited<ReturnType<typeof loadTrainData>>, transport: Transport): Promise<ClusterRunner> {
  const procs: ChildProcess[] = [];
  const workers = transport === 'threads' ? 2 : 0;
  const cluster = transport === 'ws'
    ? { listen: parseListen(listen), minWorkers: 2, token: '', peerTimeoutMs: 30_000, verifyFraction: 0, allowOrigins: [], maxConnectionsPerAddress: 32 }
    : undefined;
  const choice = chooseEngine(config, workers, transport === 'ws' ? workerSpawner(2, procs) : log, cluster);
  const model = buildTrainModel(config, choice.allocParams);
  const prepared = choice.prepare(data);
  const stepper = createStepper(config, model, prepared.train.n, choice.allocParams);
  const engine = await choice.create(model, prepared, b.batch);
  const runner: ClusterRunner = { transport, workers: transport === 'inproc' ? 0 : 2, engine, stepper, sum: allocFloats(gradLength(model)), step: 0, procs };
  await warmUp(runner, WARMUP_MS, WARMUP);
  return runner;
}

const results: { model: string; batch: number; transport: Transport; workers: number; samplesPerSec: number; bytesPerStep: number }[] = [];
const ratios: Record<string, number> = {};
const split: Record<string, unknown>[] = [];

for (const b of BENCHES.filter((x) => only === undefined || only.includes(x.model))) {
  const config: TrainConfig = { ...readConfigFile(`${ROOT}${b.config}`), batchSize: b.batch, stepTimeoutMs: 0 };
  const data = await loadTrainData(config.data, {});
  const runners: ClusterRunner[] = [];
  for (const t of ['inproc', 'threads', 'ws'] as const) runners.push(await makeRunner(b, config, data, t));
  const rounds = new Map<Transport, Round[]>(runners.map((r) => [r.transport, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const r of runners) rounds.get(r.transport)!.push(await runSteps(r, b.steps, LEAD));
  }
  for (const r of runners) await r.engine.close();
  await Promise.all(runners.flatMap((r) => r.procs.map((p) => new Promise((resolve) => { if (p.exitCode !== null) resolve(null); else p.on('close', resolve); }))));

  if (!json) {
    console.log(`${b.model}, batch ${b.batch}, ${config.microShards ?? Math.min(16, b.batch)} micro-shards, ${kernelName} kernels, ws over ` +
      `${netnsRate === undefined ? 'loopback' : `network namespaces, links shaped to ${netnsRate}`} (best of ${ROUNDS} rounds of ${b.steps} steps):`);
  }
  const rate: Partial<Record<Transport, number>> = {};
  for (const r of runners) {
    const rs = rounds.get(r.transport)!;
    const best = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
    const samplesPerSec = (b.batch * b.steps) / best.seconds;
    const stepMs = (1000 * best.seconds) / b.steps;
    rate[r.transport] = samplesPerSec;
    results.push({ model: b.model, batch: b.batch, transport: r.transport, workers: r.workers as number, samplesPerSec: Math.round(samplesPerSec * 10) / 10, bytesPerStep: Math.round(best.bytes) });
    split.push({ model: b.model, transport: r.transport, stepMs, dispatchMs: best.dispatchMs, waitMs: best.waitMs, combineMs: best.combineMs, applyMs: best.applyMs, workerComputeMs: best.workerMs / Math.max(1, r.workers as number) });
    if (!json) {
      const medianRate = median(rs.map((x) => (b.batch * b.steps) / x.seconds));
      console.log(`  ${r.transport.padEnd(7)} ${String(r.workers)} workers: ${samplesPerSec.toFixed(0).padStart(6)} samples/s (median ${medianRate.toFixed(0)}), ${stepMs.toFixed(2)} ms/step` +
        (r.transport === 'inproc' ? '' : best.loopComputeMs > 0
          ? `; step loop, per thread: computing ${best.loopComputeMs.toFixed(2)}, waiting for the other ${best.loopWaitMs.toFixed(2)}, ` +
            `reducing + applying its slice ${best.loopApplyMs.toFixed(2)} ms`
          : `; coordinator: broadcast ${best.dispatchMs.toFixed(2)}, waiting ${best.waitMs.toFixed(2)} ` +
            `(each worker computing ${(best.workerMs / (r.workers as number)).toFixed(2)}), reduction ${best.combineMs.toFixed(2)}, SGD ${best.applyMs.toFixed(2)} ms`) +
        (best.bytes > 0 ? `; ${(best.bytes / 1e6).toFixed(2)} MB on the wire per step` : ''));
    }
  }
  for (const t of ['threads', 'ws'] as const) ratios[`${b.model}/${t}`] = rate[t]! / rate.inproc!;
  if (!json) {
    console.log(`  2 threads vs inproc: ${ratios[`${b.model}/threads`].toFixed(2)}x; 2 ws processes vs inproc: ${ratios[`${b.model}/ws`].toFixed(2)}x ` +
      `(goal ${b.model === 'lstm' ? '1.8' : '1.5'}x)`);
  }
}

lan?.destroy();
if (json) console.log(JSON.stringify({ results, ratios, split, link: netnsRate ?? 'loopback' }));
