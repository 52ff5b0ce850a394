// The run status behind the dashboard: fed through teeProgress like the
// terminal, read by snapshot and by cursor, bounded in memory however long
// the run, with an ETA from the steps done so far. A fake time source.
import { describe, expect, it } from 'vitest';
import { MAX_LOSS_POINTS, RunStatus, teeProgress } from '../../coordinator/serve/live/run-status.js';
import type { RunInfo } from '../../coordinator/serve/live/status-types.js';
import type { ProgressSink } from '../../coordinator/run/trainer.js';

const INFO: RunInfo = {
  name: 'x.json', layers: ['dense 10'], params: 0, loss: 'mse', optimizer: 'SGD lr 0.1', batchSize: 8, microShards: 4,
  epochs: 2, seed: 1, kernels: 'wasm', verifyFraction: 0, tokenRequired: false,
};

function setup() {
  let now = 0;
  const status = new RunStatus({ ...INFO }, () => now);
  const seen: string[] = [];
  const sink: ProgressSink = {
    start: () => seen.push('start'), step: () => seen.push('step'), epoch: () => seen.push('epoch'),
    note: (l) => seen.push(`note ${l}`), stop: () => seen.push('stop'),
  };
  const tee = teeProgress(sink, status, () => 10);
  return { status, tee, seen, advance: (ms: number) => { now += ms; } };
}

describe('RunStatus', () => {
  it('sees what the terminal sees: steps, evaluations and notes reach both', () => {
    const { status, tee, seen, advance } = setup();
    status.setPhase('training');
    tee.start(20, 0, 1);
    for (let s = 1; s <= 10; s++) { advance(100); tee.step({ epoch: 0, step: s, loss: 1 / s, samplesPerSec: 80 }); }
    tee.epoch({ epoch: 1, step: 10, trainLoss: 0.3, test: { loss: 0.4, accuracy: 0.9, f1Macro: 0.85 } as never });
    tee.note?.('worker b1 joined');
    expect(seen).toEqual(['start', ...Array(10).fill('step'), 'epoch', 'note worker b1 joined']);
    const { message } = status.snapshot();
    expect(message.losses).toHaveLength(10);
    expect(message.losses[9]).toEqual([10, 0.1]);
    expect(message.evals).toEqual([{ epoch: 1, step: 10, trainLoss: 0.3, testLoss: 0.4, accuracy: 0.9, f1Macro: 0.85 }]);
    expect(message.events.map((e) => e.line)).toEqual(['worker b1 joined']);
    // 10 of 20 steps in about 1 s: 1 s to go, at 10 steps/s.
    expect(message.progress.etaSec).toBeCloseTo(1, 2);
    expect(message.progress.stepsPerSec).toBeCloseTo(10, 6);
    expect(message.progress).toMatchObject({ step: 10, lastStep: 20, epoch: 1, phase: 'training' });
  });

  it('an update carries only what came since the reader\'s cursor', () => {
    const { status, tee } = setup();
    tee.start(20, 0, 1);
    tee.step({ epoch: 0, step: 1, loss: 2, samplesPerSec: 1 });
    let { cursor } = status.snapshot();
    tee.step({ epoch: 0, step: 2, loss: 1.5, samplesPerSec: 1 });
    tee.note?.('a');
    const next = status.since(cursor)!;
    expect(next.message.losses).toEqual([[2, 1.5]]);
    expect(next.message.events.map((e) => e.line)).toEqual(['a']);
    cursor = next.cursor;
    expect(status.since(cursor)!.message).toMatchObject({ losses: [], evals: [], events: [] });
  });

  it('keeps at most MAX_LOSS_POINTS points: neighbours merge into their mean, and readers start over from a snapshot', () => {
    const { status, tee } = setup();
    tee.start(10 * MAX_LOSS_POINTS, 0, 1);
    const { cursor } = status.snapshot();
    for (let s = 1; s <= 3 * MAX_LOSS_POINTS; s++) tee.step({ epoch: 0, step: s, loss: s, samplesPerSec: 1 });
    expect(status.since(cursor)).toBeNull();
    const { message } = status.snapshot();
    expect(message.losses.length).toBeLessThanOrEqual(MAX_LOSS_POINTS);
    expect(message.losses.length).toBeGreaterThan(MAX_LOSS_POINTS / 2);
    const stride = message.lossStride;
    expect([2, 4]).toContain(stride);
    // Each point is the mean of the steps it stands for, placed at the last of them.
    expect(message.losses[0]).toEqual([stride, (stride + 1) / 2]);
    expect(message.losses[1]).toEqual([2 * stride, (3 * stride + 1) / 2]);
    expect(message.losses.at(-1)![0]).toBe(3 * MAX_LOSS_POINTS);
  });
});
