// `npm run bench:cluster`: training samples/s of the same step sequence in
// the coordinator's own thread (`inproc`, --workers 0), on 2 worker threads
// (`threads`) and on W `dptrain worker` processes over WebSockets (`ws`, one
// thread each, for every W of --workers-list), for the MLP 784-128-10 at
// batch 256 and 1024 and the row LSTM (hidden 128) at batch 64. All engines
// are built first (threads and worker processes started, connected, holding
// the model, and warmed up: --warmup-ms of untimed steps, 3 s by default,
// so that every isolate has compiled its code), then they take turns in
// rounds; the figure is the best round (other work on the machine only
// slows a round down), the median is printed too. Bytes per step and where
// a step's time goes (coordinator: broadcast, waiting, reduction, SGD; the
// workers' own compute) are reported for the ws runs.
//
//   node dist/bench/cluster.js [--json] [--only mlp,mlp@1024,lstm] [--rounds R] [--steps-mlp N] [--steps-mlp1024 N]
//        [--steps-lstm N] [--warmup-ms MS] [--workers-list 2,4] [--topology star] [--netns RATE]
//        [--save-calibration FILE] [--listen HOST:PORT --external-workers]
//
// --netns RATE (root): every host in a network namespace of its own behind
// its own link shaped with tc tbf to RATE (e.g. 100mbit, 1gbit), the
// coordinator too (bench/virtual-lan.ts, coordinatorLink): a switch with
// one port per machine. Bytes are then read from each link's counters
// (frames on the wire: payload, WebSocket, TCP, IP); over loopback, the
// coordinator's from its WebSocket payloads.
// --save-calibration FILE: the ws runs' measured ms per step, with the date,
// the machine and its load, merged into FILE (what `npm run sim:cluster`
// calibrates against: bench/calibration/cluster.json).
// --listen/--external-workers: listen there and wait for W workers started
// by hand instead of spawning them (one W only).
//
// With --json the last line of stdout is {"results": [{"model", "batch",
// "transport", "topology" (ws), "workers", "link", "wire", "samplesPerSec",
// "coordinatorBytesPerStep", "workerBytesPerStep" (the busiest worker's in +
// out), "workerBytesInPerStep", "workerBytesOutPerStep" (the busiest each
// way), "msPerStep"}], "ratios", "split" (per engine: where a step's time
// went, "cpuMsPerStep" of the coordinator's process and of each worker's,
// "otherCores": the cores the rest of the machine kept busy meanwhile),
// "link", "machine"}.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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
import { saveCalibration, type CalibrationPoint } from './calibration.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${ROOT}bin/dptrain.js`;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Bench { model: 'mlp' | 'lstm'; name: string; config: string; batch: number; steps: number }
const BENCHES: Bench[] = [
  { model: 'mlp', name: 'mlp', config: 'examples/mnist-mlp.json', batch: 256, steps: Number(arg('--steps-mlp') ?? 40) },
  { model: 'mlp', name: 'mlp@1024', config: 'examples/mnist-mlp.json', batch: 1024, steps: Number(arg('--steps-mlp1024') ?? 12) },
  { model: 'lstm', name: 'lstm', config: 'examples/mnist-lstm.json', batch: 64, steps: Number(arg('--steps-lstm') ?? 8) },
];
const TOPOLOGIES = ['star', 'collective'] as const;
type Topology = (typeof TOPOLOGIES)[number];
const ROUNDS = Number(arg('--rounds') ?? 6);
const WARMUP = 3;
/** Untimed milliseconds every engine runs first (--warmup-ms): see warmUp. */
const WARMUP_MS = Number(arg('--warmup-ms') ?? 3000);
const json = process.argv.includes('--json');
const only = arg('--only')?.split(',');
const netnsRate = arg('--netns');
const workersList = (arg('--workers-list') ?? '2').split(',').map(Number);
const topologies = (arg('--topology') ?? TOPOLOGIES.join(',')).split(',') as Topology[];
const listen = arg('--listen') ?? (netnsRate === undefined ? '127.0.0.1:0' : `${COORDINATOR_IP}:0`);
const external = process.argv.includes('--external-workers');
const calibrationFile = arg('--save-calibration');
for (const w of workersList) if (!(Number.isInteger(w) && w >= 1 && w <= 32)) throw new Error(`--workers-list: ${w} is not a worker count in 1..32`);
for (const t of topologies) {
  if (!(TOPOLOGIES as readonly string[]).includes(t)) throw new Error(`--topology: "${t}" is not one of ${TOPOLOGIES.join(', ')}`);
}
if (external && workersList.length !== 1) throw new Error('--external-workers needs one worker count (--workers-list W)');

let lan: VirtualLan | null = null;
const hosts: Host[] = [];
if (netnsRate !== undefined) {
  const problem = netnsProblem();
  if (problem !== null) throw new Error(`--netns: ${problem}`);
  lan = new VirtualLan(`b${process.pid % 1000}`, { coordinatorLink: true });
  lan.shape(lan.coordinator!, netnsRate);
  for (let i = 0; i < Math.max(...workersList); i++) {
    const h = lan.addHost(String.fromCharCode(97 + i));
    lan.shape(h, netnsRate);
    hosts.push(h);
  }
  process.on('exit', () => lan?.destroy());
}
const link = netnsRate ?? 'loopback';
const kernelName = setupKernels('wasm');
const log = (line: string) => { if (!json || process.env.DPTRAIN_BENCH_VERBOSE) process.stderr.write(line + '\n'); };
const loadAtStart = loadavg()[0];

type Transport = 'inproc' | 'threads' | 'ws';

interface ClusterRunner extends Runner {
  transport: Transport;
  topology?: Topology;
  count: number;
  procs: ChildProcess[];
  /** The hosts its workers run on (netns). */
  hosts: Host[];
}

/** Extra node options for the worker processes (DPTRAIN_BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=DIR" to profile them). */
const WORKER_NODE_ARGS = (process.env.DPTRAIN_BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

/** Untimed steps at the start of every round (see rounds.ts). */
const LEAD = 3;

/** Spawns the worker processes once the coordinator says where it listens (members of the collective with a peer port). */
function workerSpawner(count: number, procs: ChildProcess[], topology?: Topology): (line: string) => void {
  return (line) => {
    log(line);
    const m = /listening on (ws:\/\/\S+)/.exec(line);
    if (m === null || external) return;
    for (let i = 0; i < count; i++) {
      const peer = topology === 'collective' ? ['--peer-listen', `${hosts[i]?.ip ?? '127.0.0.1'}:0`] : [];
      const argv = [...(hosts[i]?.exec ?? []), process.execPath, ...WORKER_NODE_ARGS, BIN, 'worker', '--connect', m[1], '--threads', '1', '--name', `bench-${i}`, ...peer];
      const child = spawn(argv[0], argv.slice(1), {
        cwd: ROOT, stdio: ['ignore', 'ignore', process.env.DPTRAIN_BENCH_VERBOSE ? 'inherit' : 'ignore'],
      });
      procs.push(child);
    }
  };
}

async function makeRunner(b: Bench, config: TrainConfig, data: Awaited<ReturnType<typeof loadTrainData>>, transport: Transport, count: number, topology?: Topology): Promise<ClusterRunner> {
  const procs: ChildProcess[] = [];
  const workers = transport === 'threads' ? count : 0;
  const cluster = transport === 'ws'
    ? { listen: parseListen(listen), minWorkers: count, token: '', peerTimeoutMs: 30_000, verifyFraction: 0, allowOrigins: [], maxConnectionsPerAddress: 32 }
    : undefined;
  const choice = chooseEngine({ ...config, ...(topology === undefined ? {} : { topology }) }, workers, transport === 'ws' ? workerSpawner(count, procs, topology) : log, cluster);
  const model = buildTrainModel(config, choice.allocParams);
  const prepared = choice.prepare(data);
  const stepper = createStepper(config, model, prepared.train.n, choice.allocParams);
  const engine = await choice.create(model, prepared, b.batch);
  const runner: ClusterRunner = {
    transport, ...(topology === undefined ? {} : { topology }), count, workers: transport === 'inproc' ? 0 : count, engine, stepper,
    sum: allocFloats(gradLength(model)), step: 0, procs, hosts: transport === 'ws' ? hosts.slice(0, count) : [],
  };
  await warmUp(runner, WARMUP_MS, WARMUP);
  return runner;
}

/** Bytes on a set of links so far. */
function linkBytes(hs: readonly Host[]): { sent: number; received: number }[] {
  return hs.map((h) => lan!.linkBytes(h));
}

/** A timed round with the bytes every host moved in it (from the links' counters under --netns) and the CPU time each process took. */
interface Measured extends Round {
  coordinator: { sent: number; received: number } | null;
  workers: { sent: number; received: number }[];
  /** CPU ms of the coordinator's process (every thread) and of each worker process in the round. */
  cpu: { coordinator: number; workers: number[] };
  /** Cores the rest of the machine kept busy during the round, on average (other users of this VM, the hypervisor's steal). */
  otherCores: number;
}

/**
 * CPU ms the whole machine has been busy (every core: user, nice, system, steal), from /proc/stat's 10 ms
 * ticks. Not irq and softirq: mostly the virtual LAN's own packets, which this run causes.
 */
function machineBusyMs(): number {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return 10 * (f[0] + f[1] + f[2] + (f[7] ?? 0));
  } catch {
    return NaN;
  }
}

/** CPU ms a process has used so far, every thread of it (the scheduler's ns counters; 0 once it is gone). */
function processCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return readdirSync(`/proc/${pid}/task`).reduce((ms, t) => ms + Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]) / 1e6, 0);
  } catch {
    return 0;
  }
}

const round2 = (x: number) => Math.round(100 * x) / 100;

async function measure(r: ClusterRunner, steps: number): Promise<Measured> {
  await runSteps(r, LEAD);
  const c0 = lan === null || r.transport !== 'ws' ? null : lan.linkBytes(lan.coordinator!);
  const w0 = lan === null ? [] : linkBytes(r.hosts);
  const cpu0 = { coordinator: process.cpuUsage(), workers: r.procs.map((p) => processCpuMs(p.pid)), machine: machineBusyMs(), at: performance.now() };
  const round = await runSteps(r, steps);
  const cpuC = process.cpuUsage(cpu0.coordinator);
  const cpu = { coordinator: (cpuC.user + cpuC.system) / 1000, workers: r.procs.map((p, i) => processCpuMs(p.pid) - cpu0.workers[i]) };
  const ours = cpu.coordinator + cpu.workers.reduce((a, x) => a + x, 0);
  const otherCores = Math.max(0, (machineBusyMs() - cpu0.machine - ours) / (performance.now() - cpu0.at)) || 0;
  const c1 = c0 === null ? null : lan!.linkBytes(lan!.coordinator!);
  const w1 = lan === null ? [] : linkBytes(r.hosts);
  const per = (a: { sent: number; received: number }, b: { sent: number; received: number }) => ({ sent: (b.sent - a.sent) / steps, received: (b.received - a.received) / steps });
  return { ...round, coordinator: c0 === null ? null : per(c0, c1!), workers: w0.map((x, i) => per(x, w1[i])), cpu, otherCores };
}

interface Result {
  model: string; batch: number; transport: Transport; topology?: Topology; workers: number; link: string; wire: 'f32';
  samplesPerSec: number; msPerStep: number;
  coordinatorBytesPerStep: number | null; workerBytesPerStep: number | null; workerBytesInPerStep: number | null; workerBytesOutPerStep: number | null;
}
const results: Result[] = [];
const ratios: Record<string, number> = {};
const split: Record<string, unknown>[] = [];
const calibration: CalibrationPoint[] = [];

for (const b of BENCHES.filter((x) => only === undefined || only.includes(x.name))) {
  // Epochs enough that the rounds never go round the run's steps again: a step out of turn resyncs the collective's members.
  const config: TrainConfig = { ...readConfigFile(`${ROOT}${b.config}`), batchSize: b.batch, stepTimeoutMs: 0, epochs: 1000 };
  const data = await loadTrainData(config.data, {});
  const runners: ClusterRunner[] = [];
  runners.push(await makeRunner(b, config, data, 'inproc', 0));
  runners.push(await makeRunner(b, config, data, 'threads', 2));
  for (const t of topologies) for (const w of workersList) runners.push(await makeRunner(b, config, data, 'ws', w, t));
  const label = (r: ClusterRunner) => (r.transport === 'ws' ? `ws ${r.topology} ${r.count}` : r.transport);
  const rounds = new Map<ClusterRunner, Measured[]>(runners.map((r) => [r, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const r of runners) {
      const perf = process.env.DPTRAIN_BENCH_PERF !== undefined && r.transport === 'ws'
        ? spawn('perf', ['record', '-a', '-g', '-F', '1999', '-o', `${process.env.DPTRAIN_BENCH_PERF}.${b.name}.${i}`], { stdio: 'ignore' }) : null;
      if (perf !== null) await new Promise((res) => setTimeout(res, 300));
      rounds.get(r)!.push(await measure(r, b.steps));
      if (perf !== null) { perf.kill('SIGINT'); await new Promise((res) => perf.on('close', res)); }
    }
  }
  for (const r of runners) await r.engine.close();
  await Promise.all(runners.flatMap((r) => r.procs.map((p) => new Promise((resolve) => { if (p.exitCode !== null) resolve(null); else p.on('close', resolve); }))));

  if (!json) {
    console.log(`${b.model}, batch ${b.batch}, ${config.microShards ?? Math.min(16, b.batch)} micro-shards, ${kernelName} kernels, ws over ` +
      `${netnsRate === undefined ? 'loopback' : `network namespaces, every link (the coordinator's too) shaped to ${netnsRate}`} (best of ${ROUNDS} rounds of ${b.steps} steps):`);
  }
  let inproc = NaN;
  for (const r of runners) {
    const rs = rounds.get(r)!;
    const best = rs.reduce((a, x) => (x.seconds < a.seconds ? x : a));
    const samplesPerSec = (b.batch * b.steps) / best.seconds;
    const stepMs = (1000 * best.seconds) / b.steps;
    if (r.transport === 'inproc') inproc = samplesPerSec;
    const coordinatorBytes = best.coordinator !== null ? best.coordinator.sent + best.coordinator.received : r.transport === 'ws' ? best.bytes : null;
    const busiest = (f: (x: { sent: number; received: number }) => number) => (best.workers.length === 0 ? null : Math.round(Math.max(...best.workers.map(f))));
    results.push({
      model: b.model, batch: b.batch, transport: r.transport, ...(r.topology === undefined ? {} : { topology: r.topology }), workers: r.count, link, wire: 'f32',
      samplesPerSec: Math.round(samplesPerSec * 10) / 10, msPerStep: Math.round(stepMs * 1000) / 1000,
      coordinatorBytesPerStep: coordinatorBytes === null ? null : Math.round(coordinatorBytes),
      workerBytesPerStep: busiest((x) => x.sent + x.received), workerBytesInPerStep: busiest((x) => x.received), workerBytesOutPerStep: busiest((x) => x.sent),
    });
    // CPU per step over every round (the coordinator's process hosts the other engines too, idle in this one's rounds).
    const cpuPerStep = {
      coordinator: Math.round((1000 * rs.reduce((a, x) => a + x.cpu.coordinator, 0)) / (rs.length * b.steps)) / 1000,
      workers: r.procs.map((_, i) => Math.round((1000 * rs.reduce((a, x) => a + x.cpu.workers[i], 0)) / (rs.length * b.steps)) / 1000),
    };
    if (r.transport === 'ws') {
      ratios[`${b.name}/${label(r).replace(/ /g, '-')}`] = samplesPerSec / inproc;
      calibration.push({ model: b.model, batch: b.batch, topology: r.topology!, workers: r.count, link, measuredMsPerStep: stepMs, otherCores: round2(best.otherCores), cpuMsPerStep: cpuPerStep });
    } else if (r.transport === 'threads') {
      ratios[`${b.name}/threads`] = samplesPerSec / inproc;
    } else {
      calibration.push({ model: b.model, batch: b.batch, topology: 'inproc', workers: 0, link, measuredMsPerStep: stepMs, otherCores: round2(best.otherCores), cpuMsPerStep: cpuPerStep });
    }
    split.push({
      model: b.model, batch: b.batch, transport: r.transport, topology: r.topology, workers: r.count, stepMs, cpuMsPerStep: cpuPerStep, otherCores: round2(best.otherCores), dispatchMs: best.dispatchMs, waitMs: best.waitMs,
      combineMs: best.combineMs, applyMs: best.applyMs, workerComputeMs: best.workerMs / Math.max(1, r.count),
      ...(r.topology === 'collective' ? { collectiveComputeMs: best.collectiveComputeMs, collectiveExchangeMs: best.collectiveExchangeMs } : {}),
    });
    if (!json) {
      const medianRate = median(rs.map((x) => (b.batch * b.steps) / x.seconds));
      const bytes = coordinatorBytes === null ? '' : `; coordinator ${(coordinatorBytes / 1e6).toFixed(2)} MB per step` +
        (best.workers.length === 0 ? '' : `, busiest worker ${(Math.max(...best.workers.map((x) => x.sent + x.received)) / 1e6).toFixed(2)} MB`);
      console.log(`  ${label(r).padEnd(12)} ${String(r.count).padStart(2)} workers: ${samplesPerSec.toFixed(0).padStart(6)} samples/s (median ${medianRate.toFixed(0)}), ` +
        `${stepMs.toFixed(2)} ms/step, ${(samplesPerSec / inproc).toFixed(2)}x inproc` +
        (r.transport === 'inproc' ? '' : r.topology === 'collective'
          ? `; members computing ${best.collectiveComputeMs.toFixed(2)} ms, then the exchange of parts and slices ${best.collectiveExchangeMs.toFixed(2)} ms`
          : best.loopComputeMs > 0
          ? `; step loop, per thread: computing ${best.loopComputeMs.toFixed(2)}, waiting for the other ${best.loopWaitMs.toFixed(2)}, ` +
            `reducing + applying its slice ${best.loopApplyMs.toFixed(2)} ms`
          : `; coordinator: broadcast ${best.dispatchMs.toFixed(2)}, waiting ${best.waitMs.toFixed(2)} ` +
            `(each worker computing ${(best.workerMs / r.count).toFixed(2)}), reduction ${best.combineMs.toFixed(2)}, SGD ${best.applyMs.toFixed(2)} ms`) +
        bytes + `; CPU per step: coordinator ${cpuPerStep.coordinator.toFixed(2)} ms` +
        (cpuPerStep.workers.length === 0 ? '' : `, workers ${cpuPerStep.workers.map((x) => x.toFixed(2)).join(', ')} ms`) +
        `; the rest of the machine kept ${best.otherCores.toFixed(2)} cores busy`);
    }
  }
}

lan?.destroy();
const machine = { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, load1: { start: loadAtStart, end: loadavg()[0] }, node: process.version };
if (calibrationFile !== undefined) {
  saveCalibration(calibrationFile, calibration, machine);
  log(`calibration: ${calibration.length} points merged into ${calibrationFile}`);
}
if (json) console.log(JSON.stringify({ results, ratios, split, link, machine }));
