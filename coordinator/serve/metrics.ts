// The coordinator's Prometheus metrics, on a registry of its own (never
// prom-client's global one: two runs in one process, as in tests, must not
// share counters). The training loop and the dispatcher report events through
// the small typed API below; prom-client keeps the numbers and writes the
// text format. Our metrics are named dptrain_*; the process metrics
// (process_cpu_seconds_total, nodejs_heap_size_used_bytes, ...) keep
// prom-client's standard names so stock dashboards find them.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PHASES, type Phase } from './health.js';
import { getRoute, sendText, type Handler } from '../../node/http/server.js';

/** Why a worker's connection was refused: a fixed set, so the label stays bounded. */
export const REFUSAL_REASONS = [
  'bad-token', 'protocol-version', 'invalid-message', 'run-finished', 'bad-origin', 'too-many-connections', 'quarantined', 'other',
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Step-time buckets in seconds: 1-2-5 steps from 1 ms to 10 s (a small MLP step to a long LSTM one). */
export const STEP_SECONDS_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

/** Steps that the samples/s gauge averages over. */
export const THROUGHPUT_WINDOW_STEPS = 20;

export interface StepReport {
  /** Wall-clock seconds of the step, dispatch to SGD update. */
  seconds: number;
  /** Samples in the step's global batch. */
  samples: number;
  /** The batch's mean training loss. */
  loss: number;
}

export interface RunMetrics {
  registry: Registry;
  /** GET /metrics in the Prometheus text format. */
  handler: Handler;
  stepDone(step: StepReport): void;
  setWorkers(connected: number): void;
  rangeReassigned(ranges?: number): void;
  connectionRefused(reason: RefusalReason): void;
  /** Bytes of the training set sent to a worker (a returning tab or a worker with a cache fetches none). */
  datasetServed(bytes: number): void;
  setPhase(phase: Phase): void;
}

export function createRunMetrics(): RunMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const steps = new Counter({ name: 'dptrain_steps_total', help: 'Training steps completed by this coordinator process', registers });
  const samples = new Counter({ name: 'dptrain_samples_total', help: 'Training samples processed by this coordinator process', registers });
  const loss = new Gauge({ name: 'dptrain_loss', help: 'Mean training loss of the last step', registers });
  const stepSeconds = new Histogram({ name: 'dptrain_step_seconds', help: 'Wall-clock seconds per training step', buckets: STEP_SECONDS_BUCKETS, registers });
  const workers = new Gauge({ name: 'dptrain_workers_connected', help: 'Workers connected to the coordinator', registers });
  const reassigned = new Counter({ name: 'dptrain_ranges_reassigned_total', help: 'Micro-shard ranges reassigned to another worker (stalled, failed or disconnected)', registers });
  const refused = new Counter({ name: 'dptrain_connections_refused_total', help: 'Worker connections refused, by reason', labelNames: ['reason'], registers });
  const datasetBytes = new Counter({ name: 'dptrain_dataset_bytes_served_total', help: 'Bytes of the training set sent to workers', registers });
  const phase = new Gauge({ name: 'dptrain_phase', help: 'The run phase: 1 for the current one, 0 for the others', labelNames: ['phase'], registers });

  // samples/s over the last steps' own time: the throughput while stepping
  // (rate(dptrain_samples_total[1m]) gives it over wall-clock time instead).
  const window: StepReport[] = [];
  new Gauge({
    name: 'dptrain_samples_per_second',
    help: `Samples per second of step time over the last ${THROUGHPUT_WINDOW_STEPS} steps`,
    registers,
    collect() {
      let n = 0, s = 0;
      for (const w of window) { n += w.samples; s += w.seconds; }
      this.set(s > 0 ? n / s : 0);
    },
  });

  // Every label value exists from the start, so a dashboard sees zeros, not gaps.
  for (const reason of REFUSAL_REASONS) refused.inc({ reason }, 0);
  const setPhase = (current: Phase) => { for (const p of PHASES) phase.set({ phase: p }, p === current ? 1 : 0); };
  setPhase('starting');
  workers.set(0);

  const handler = getRoute('/metrics', (_req, res) => {
    registry.metrics().then(
      (text) => { res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' }); res.end(text); },
      (err: Error) => sendText(res, 500, `metrics: ${err.message}\n`),
    );
  });

  return {
    registry,
    handler,
    stepDone(step) {
      steps.inc();
      samples.inc(step.samples);
      loss.set(step.loss);
      stepSeconds.observe(step.seconds);
      window.push(step);
      if (window.length > THROUGHPUT_WINDOW_STEPS) window.shift();
    },
    setWorkers: (connected) => workers.set(connected),
    rangeReassigned: (ranges = 1) => reassigned.inc(ranges),
    connectionRefused: (reason) => refused.inc({ reason }),
    datasetServed: (bytes) => datasetBytes.inc(bytes),
    setPhase,
  };
}
