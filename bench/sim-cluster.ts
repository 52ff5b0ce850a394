// `npm run sim:cluster`: a discrete-event model of bench:cluster's runs
// (bench/sim/): the star with the real dispatcher, the collective with the
// real schedule and slice reducers; modelled are only the clock, the links
// (rate, latency, chunks through a switch port per host), the CPUs and the
// compute (micro-shard, addition, update and rounding times measured here
// with the real code). Two parts:
//   - calibration: every netns measurement in bench/calibration/cluster.json
//     (bench:cluster --save-calibration), simulated as it was run: every
//     process on this machine's cores beside the load the bench measured
//     from the rest of the machine (otherCores: that many jobs that never
//     end, cpu.ts), the compute scaled to the inproc step the bench
//     measured in the same run (which had its own share of that load); the
//     link efficiency, the CPU costs of a message (per message, per byte)
//     and the coordinator's and each worker's own per-step work are fitted
//     to all points at once (the least worst relative error), and each
//     point's simulated ms per step is printed beside its measurement, and
//     the processes' simulated CPU per step beside what bench:cluster
//     measured of them (cpuMsPerStep: a check, not fitted);
//   - projections: 8, 32 and 64 workers of one core each (K = the next power
//     of two >= max(8, W) micro-shards), the MLP at batch 256 and 4096 and
//     the LSTM at 64 and 1024, over 1 and 10 Gbit/s, f32 and bf16, star and
//     collective: ms per step and linearFraction = T1 / (W x T_W), T1 the
//     step on one machine.
//
//   node dist/bench/sim-cluster.js [--json] [--calibration FILE] [--steps N] [--workers 8,32,64]
//
// With --json the last line is {"calibration": [{"model", "batch",
// "topology", "workers", "link", "otherCores", "measuredMsPerStep", "simulatedMsPerStep",
// "measuredCpuMsPerStep", "simulatedCpuMsPerStep" ({"coordinator", "worker": the
// workers' mean}: the model's CPU against the processes' measured CPU)}],
// "projections": [{"model", "batch", "topology", "workers", "link", "wire",
// "msPerStep", "linearFraction"}], "fit", "costs"}.
import { fileURLToPath } from 'node:url';
import { loadCalibration } from './calibration.js';
import { inprocMs, measureCosts, workload, type ModelCosts } from './sim/costs.js';
import { simulateCollective } from './sim/collective.js';
import { machine, type WireCosts, type Workload } from './sim/model.js';
import { slowdown } from './sim/cpu.js';
import { simulateStar, type RunFigures } from './sim/star.js';
import type { GradWire } from '../src/reduce/bf16.js';
import { setupKernels } from '../node/kernels/setup.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const json = process.argv.includes('--json');
const file = arg('--calibration') ?? `${ROOT}bench/calibration/cluster.json`;
const STEPS = Number(arg('--steps') ?? 8);
const WARM = 3;
const PROJECTED_WORKERS = (arg('--workers') ?? '8,32,64').split(',').map(Number);
/** This machine's cores, shared by every process of a calibration run. */
const CORES = 2;
/** Micro-shards of the example configs, as bench:cluster runs them. */
const BENCH_K = 8;
const LATENCY_MS = 0.05;

setupKernels('wasm');
const say = (line: string) => { if (!json) console.log(line); };

/** Bytes per ms of a tc rate (100mbit, 1gbit, 10gbit). */
export function rateOf(link: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)bit$/.exec(link);
  if (m === null) throw new Error(`link "${link}" is not a tc rate such as 100mbit or 1gbit`);
  const bits = Number(m[1]) * { k: 1e3, m: 1e6, g: 1e9 }[m[2] as 'k' | 'm' | 'g'];
  return bits / 8 / 1000;
}

interface Fit { efficiency: number; msgMs: number; byteNs: number; fifo: boolean; stepMs: number; workerStepMs: number }

/** The tc tbf shapers of bench:cluster --netns (bench/virtual-lan.ts): burst 256kb. */
const TBF_BURST = 256 * 1024;

/** A link as the calibration runs had it (shaped: with the shaper's burst), or as a projection has it (a plain link). */
function wireOf(link: string, fit: Fit, shaped = false): WireCosts {
  return { rate: rateOf(link) * fit.efficiency, latencyMs: LATENCY_MS, msgMs: fit.msgMs, byteMs: fit.byteNs * 1e-6, fifo: fit.fifo, stepMs: fit.stepMs, workerStepMs: fit.workerStepMs, ...(shaped ? { burst: TBF_BURST } : {}) };
}

async function simulate(w: Workload, topology: 'star' | 'collective', workers: number, wire: WireCosts, shared: number | null, grad: GradWire, background = 0): Promise<RunFigures> {
  const m = machine(workers, wire, shared, 1, background);
  return topology === 'star' ? simulateStar(w, m, workers, STEPS, WARM) : simulateCollective(w, m, workers, STEPS, WARM, grad);
}

const costs: Record<'mlp' | 'lstm', ModelCosts> = { mlp: measureCosts(ROOT, 'mlp'), lstm: measureCosts(ROOT, 'lstm') };

// ---- calibration
const cal = loadCalibration(file);
const runs = cal.points.filter((p) => p.topology !== 'inproc');
const inproc = (p: (typeof runs)[number]) => cal.points.find((q) => q.topology === 'inproc' && q.model === p.model && q.batch === p.batch && q.link === p.link);
const points = runs.flatMap((p) => {
  const ref = inproc(p);
  if (ref === undefined) return [];
  const plain = workload(costs[p.model], p.batch, BENCH_K);
  // The compute as fast as the inproc step of the same run, which ran beside the machine's other users too.
  return [{ p, w: workload(costs[p.model], p.batch, BENCH_K, ref.measuredMsPerStep / (inprocMs(plain) * slowdown(CORES, ref.otherCores ?? 0))) }];
});

async function errors(fit: Fit): Promise<number[]> {
  const out: number[] = [];
  for (const { p, w } of points) {
    const r = await simulate(w, p.topology as 'star' | 'collective', p.workers, wireOf(p.link, fit, true), CORES, 'f32', p.otherCores ?? 0);
    out.push(r.msPerStep / p.measuredMsPerStep - 1);
  }
  return out;
}

let fit: Fit = { efficiency: 0.94, msgMs: 0.05, byteNs: 1, fifo: true, stepMs: 0, workerStepMs: 0 };
if (points.length > 0) {
  let bestWorst = Infinity;
  for (const fifo of [true, false]) {
    for (const efficiency of [0.9, 0.95, 1, 1.05]) {
      for (const msgMs of [0.02, 0.05, 0.1, 0.2]) {
        for (const byteNs of [1, 2, 4, 6, 9]) {
          for (const stepMs of [0, 1, 2, 4]) {
            for (const workerStepMs of [0, 1, 2, 3]) {
              const e = await errors({ efficiency, msgMs, byteNs, fifo, stepMs, workerStepMs });
              const worst = Math.max(...e.map(Math.abs));
              if (worst < bestWorst) { bestWorst = worst; fit = { efficiency, msgMs, byteNs, fifo, stepMs, workerStepMs }; }
            }
          }
        }
      }
    }
  }
}
interface CpuPerStep { coordinator: number; worker: number }
const calibration: {
  model: string; batch: number; topology: string; workers: number; link: string; otherCores: number; measuredMsPerStep: number; simulatedMsPerStep: number;
  measuredCpuMsPerStep: CpuPerStep | null; simulatedCpuMsPerStep: CpuPerStep;
}[] = [];
const mean = (xs: readonly number[]) => xs.reduce((a, x) => a + x, 0) / Math.max(1, xs.length);
const r3 = (x: number) => Math.round(x * 1000) / 1000;
for (const { p, w } of points) {
  const r = await simulate(w, p.topology as 'star' | 'collective', p.workers, wireOf(p.link, fit, true), CORES, 'f32', p.otherCores ?? 0);
  const measuredCpu = p.cpuMsPerStep === undefined ? null : { coordinator: p.cpuMsPerStep.coordinator, worker: r3(mean(p.cpuMsPerStep.workers)) };
  calibration.push({
    model: p.model, batch: p.batch, topology: p.topology, workers: p.workers, link: p.link, otherCores: p.otherCores ?? 0, measuredMsPerStep: p.measuredMsPerStep,
    simulatedMsPerStep: r3(r.msPerStep), measuredCpuMsPerStep: measuredCpu,
    simulatedCpuMsPerStep: { coordinator: r3(r.cpuMsPerStep.coordinator), worker: r3(mean(r.cpuMsPerStep.workers)) },
  });
}
say(`calibration against ${file} (${points.length} points; fitted: links carry ${Math.round(fit.efficiency * 100)}% of their rate as payload, ` +
  `${fit.msgMs} ms and ${fit.byteNs} ns/byte of CPU per message on each end, ${fit.stepMs} ms of the coordinator's own and ${fit.workerStepMs} ms of each worker's per step; a host's messages ${fit.fifo ? 'leave one after the other' : 'take turns'}):`);
for (const c of calibration) {
  say(`  ${c.model} b${c.batch} ${c.topology} ${c.workers} workers ${c.link} (the rest of the machine: ${c.otherCores.toFixed(2)} cores): measured ${c.measuredMsPerStep.toFixed(2)} ms/step, simulated ${c.simulatedMsPerStep.toFixed(2)} ` +
    `(${(100 * (c.simulatedMsPerStep / c.measuredMsPerStep - 1)).toFixed(1)}%); CPU per step, coordinator / a worker: ` +
    (c.measuredCpuMsPerStep === null ? '' : `measured ${c.measuredCpuMsPerStep.coordinator.toFixed(2)} / ${c.measuredCpuMsPerStep.worker.toFixed(2)} ms, `) +
    `simulated ${c.simulatedCpuMsPerStep.coordinator.toFixed(2)} / ${c.simulatedCpuMsPerStep.worker.toFixed(2)}`);
}

// ---- projections
const projections: { model: string; batch: number; topology: string; workers: number; link: string; wire: GradWire; msPerStep: number; linearFraction: number }[] = [];
say('projections (workers of one core each on one switch; K micro-shards = the next power of two >= max(8, W)):');
for (const [model, batch] of [['mlp', 256], ['mlp', 4096], ['lstm', 64], ['lstm', 1024]] as const) {
  for (const workers of PROJECTED_WORKERS) {
    const k = Math.min(batch, 2 ** Math.ceil(Math.log2(Math.max(8, workers))));
    const w = workload(costs[model], batch, k);
    const t1 = inprocMs(w);
    for (const link of ['1gbit', '10gbit']) {
      for (const wire of ['f32', 'bf16'] as const) {
        for (const topology of ['star', 'collective'] as const) {
          if (topology === 'star' && wire === 'bf16') continue; // the star's wire is float32
          const r = await simulate(w, topology, workers, wireOf(link, fit), null, wire);
          const linearFraction = t1 / (workers * r.msPerStep);
          projections.push({ model, batch, topology, workers, link, wire, msPerStep: Math.round(r.msPerStep * 1000) / 1000, linearFraction: Math.round(linearFraction * 1000) / 1000 });
          say(`  ${model} b${batch} ${topology.padEnd(10)} ${String(workers).padStart(2)} workers ${link.padEnd(6)} ${wire}: ${r.msPerStep.toFixed(2)} ms/step ` +
            `(one machine ${t1.toFixed(1)}), linear fraction ${linearFraction.toFixed(2)}`);
        }
      }
    }
  }
}
if (json) {
  const c = (m: ModelCosts) => ({ gradLen: m.gradLen, addNsPerFloat: m.addMsPerFloat * 1e6, applyNsPerFloat: m.applyMsPerFloat * 1e6, roundNsPerFloat: m.roundMsPerFloat * 1e6 });
  console.log(JSON.stringify({ calibration, projections, fit, costs: { mlp: c(costs.mlp), lstm: c(costs.lstm) } }));
}
