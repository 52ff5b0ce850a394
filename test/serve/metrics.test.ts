import { afterEach, describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import { createRunMetrics, STEP_SECONDS_BUCKETS } from '../../coordinator/serve/metrics.js';
import { startHttpServer, type RunningHttpServer } from '../../node/http/server.js';

let running: RunningHttpServer | undefined;
afterEach(async () => { await running?.close(); });

/** The value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  if (line === undefined) throw new Error(`no sample ${series} in:\n${text}`);
  return Number(line.slice(series.length + 1));
}

describe('createRunMetrics', () => {
  it('serves the run metrics in the Prometheus text format on GET /metrics', async () => {
    const m = createRunMetrics();
    running = await startHttpServer({ host: '127.0.0.1', port: 0, handlers: [m.handler] });
    m.setPhase('training');
    m.setWorkers(3);
    m.stepDone({ seconds: 0.004, samples: 64, loss: 2.5 });
    m.stepDone({ seconds: 0.012, samples: 64, loss: 1.5 });
    m.rangeReassigned();
    m.rangeReassigned(2);
    m.connectionRefused('bad-token');

    const res = await fetch(`${running.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE dptrain_step_seconds histogram');
    expect(sample(text, 'dptrain_steps_total')).toBe(2);
    expect(sample(text, 'dptrain_samples_total')).toBe(128);
    expect(sample(text, 'dptrain_loss')).toBe(1.5);
    expect(sample(text, 'dptrain_samples_per_second')).toBe(8000); // 128 samples / 0.016 s
    expect(sample(text, 'dptrain_workers_connected')).toBe(3);
    expect(sample(text, 'dptrain_ranges_reassigned_total')).toBe(3);
    expect(sample(text, 'dptrain_connections_refused_total{reason="bad-token"}')).toBe(1);
    expect(sample(text, 'dptrain_connections_refused_total{reason="protocol-version"}')).toBe(0);
    expect(sample(text, 'dptrain_phase{phase="training"}')).toBe(1);
    expect(sample(text, 'dptrain_phase{phase="starting"}')).toBe(0);
    expect(sample(text, 'dptrain_step_seconds_bucket{le="0.002"}')).toBe(0);
    expect(sample(text, 'dptrain_step_seconds_bucket{le="0.005"}')).toBe(1);
    expect(sample(text, 'dptrain_step_seconds_bucket{le="0.02"}')).toBe(2);
    expect(sample(text, 'dptrain_step_seconds_bucket{le="+Inf"}')).toBe(2);
    expect(sample(text, 'dptrain_step_seconds_sum')).toBeCloseTo(0.016, 12);
    // The process's own metrics, under their standard names.
    expect(sample(text, 'process_cpu_seconds_total')).toBeGreaterThan(0);
    expect(text).toContain('nodejs_heap_size_used_bytes');
    // Only GET and HEAD.
    expect((await fetch(`${running.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  it('step-time buckets cover 1 ms to 10 s; runs do not share counters; the global registry stays empty', async () => {
    expect(STEP_SECONDS_BUCKETS[0]).toBe(0.001);
    expect(STEP_SECONDS_BUCKETS.at(-1)).toBe(10);
    const a = createRunMetrics();
    const b = createRunMetrics();
    a.stepDone({ seconds: 0.1, samples: 10, loss: 1 });
    expect(sample(await a.registry.metrics(), 'dptrain_steps_total')).toBe(1);
    expect(sample(await b.registry.metrics(), 'dptrain_steps_total')).toBe(0);
    expect(sample(await b.registry.metrics(), 'dptrain_samples_per_second')).toBe(0);
    expect(await globalRegistry.getMetricsAsJSON()).toEqual([]);
  });

  it('samples/s averages the last 20 steps only', async () => {
    const m = createRunMetrics();
    for (let i = 0; i < 20; i++) m.stepDone({ seconds: 1, samples: 1, loss: 0 });
    for (let i = 0; i < 20; i++) m.stepDone({ seconds: 0.5, samples: 100, loss: 0 });
    expect(sample(await m.registry.metrics(), 'dptrain_samples_per_second')).toBe(200);
  });
});
