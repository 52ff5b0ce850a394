// The step loop, coordinator side: a thread-only run's steps, computed,
// reduced and applied by the worker threads themselves (the board and the
// threads' side: src/steploop/board.ts, src/steploop/lane.ts). The
// coordinator only orders steps, so nothing of a step is serial here:
//   - it writes the step's job into a slot of the board (the indices, the
//     micro-shard cut: equal ranges, cut at aligned micro-shards) and sets
//     the slot's PERMIT when the trainer asks for that step; the threads
//     compute their blocks, then each reduces and applies its own slice of
//     the gradient vector (the same operations per element as applyStep, in
//     the same tree order: the same bits);
//   - with the trainer's next job it writes the next slot at once: the
//     threads go on to that step's gradient without waiting for the
//     coordinator's turn (its progress line, its bookkeeping, waking up),
//     and write no weight of it before its PERMIT. Between two calls the
//     weights and the optimizer state hold the last step's values, for the
//     trainer to read (evaluation, checkpoints, verify).
// Anything else goes to `general` (the dispatcher over the same threads, its
// reduction and the trainer's applyStep here): a thread that fails or dies
// while computing a step (its weights untouched), one that does not finish
// computing within the step timeout, a step asked for out of turn, a
// thread still busy after such a fallback. A thread that fails while
// applying its slice leaves that step's weights half written: the run stops
// (DPT_ERR_WORKER); the last checkpoint resumes it.
import { dptError } from '../../src/errors.js';
import type { Model } from '../../src/model/model.js';
import { treeHeight } from '../../src/reduce/tree.js';
import { allocFloats } from '../../src/tensor/alloc.js';
import { shardCount } from '../../src/train/batch.js';
import { rowsOf } from '../../src/train/range.js';
import { gradLength, stepPenalty } from '../../src/train/step.js';
import {
  cancelStep, H, lossOf, permitStep, PHASE_READY, phaseTimes, postStep, S, slotOf, startLoop, exitSteps, MAX_LANES,
} from '../../src/steploop/board.js';
import { systemClock, type Clock, type Timer } from '../../src/dispatch/clock.js';
import type { WorkerSummary } from '../../src/dispatch/contract.js';
import { alignedSplit, CUT_TOLERANCE } from '../../src/dispatch/ranges.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import { runStep, type BatchJob, type EngineStats, type GradientEngine, type LoopStats, type StepOutcome } from './engine.js';
import type { Stepper } from '../run/stepper.js';
import { stateArrays } from '../../src/optim/optimizer.js';
import type { LoopExit, StepLanes, StepRegion } from '../../node/threads/transport.js';

// NOTE: Node 20 (V8 11.3) has Atomics.waitAsync; tsconfig's lib ES2022 does not declare it.
const waitAsync = (Atomics as unknown as {
  waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}).waitAsync;

export interface StepLoopOptions {
  lanes: StepLanes;
  /** Runs any step the loop does not: the dispatcher over the same threads. */
  general: GradientEngine;
  /** The weights (the shared buffer the threads read and write) and their version. */
  weights: WeightsBoard;
  model: Model;
  /** A thread that has not computed its blocks this long after the step was asked for: the step goes to the dispatcher (0: wait). */
  stepTimeoutMs: number;
  log: (line: string) => void;
  clock?: Clock;
}

interface Loop {
  /** The step posted ahead (with the previous call's `next`), not yet permitted. */
  ahead: { seq: number; step: number } | null;
  /** The last step the loop applied: the threads hold its weights and optimizer state (the next must follow it). */
  last: number;
  /** The call waiting for a step to be DONE. */
  waiter: { seq: number; settle: (r: Waited) => void } | null;
  ended: boolean;
  /** Threads still in the loop; `out` resolves when none is. */
  inside: number;
  readonly out: Promise<void>;
  readonly allOut: () => void;
  /** A thread failed after every thread had armed: the others write their slices, its own stays half written. */
  written: boolean;
}

type Waited = { kind: 'done' } | { kind: 'failed'; lane: number; why: string } | { kind: 'stalled'; late: number[] };

function fillsShared(a: Float32Array): boolean {
  return a.buffer instanceof SharedArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/** How long a new loop waits at most for the threads to leave the last one before its step goes to the dispatcher. */
const LEAVING_WAIT_MS = 1000;

export function createStepLoopEngine(o: StepLoopOptions): GradientEngine {
  const { lanes, general, weights, model } = o;
  const board = lanes.board;
  const clock = o.clock ?? systemClock;
  const gradLen = gradLength(model);
  const penalized = model.entries.some((e) => e.trainable && (e.l1 > 0 || e.l2 > 0));
  const sum = allocFloats(gradLen); // for the steps that go to the dispatcher
  const stats: LoopStats = { steps: 0, computeMs: 0, waitMs: 0, applyMs: 0, postMs: 0, fallbacks: 0 };
  const tally = Array.from({ length: lanes.count }, () => ({ microShards: 0, samples: 0, busyMs: 0 }));
  let blockRegions: { blocks: number; regions: StepRegion[] } | null = null;
  let seq = 1;
  let loop: Loop | null = null;
  /** The loop ended last, while its threads leave it. */
  let leaving: Loop | null = null;
  let broken: Error | null = null;
  let closing = false;
  /** The step being waited for: close() lets it finish or drop before it stops the threads. */
  let inflight: Promise<Waited> | null = null;

  /** Whether this step can run in the loop at all (the weights and the optimizer's state are the shared buffers the threads write). */
  function fits(stepper: Stepper): boolean {
    return lanes.count <= MAX_LANES && stepper.model === model && model.params === weights.params && fillsShared(model.params)
      && stateArrays(stepper.optimizer, stepper.optimizerState).every((s) => fillsShared(s.array));
  }

  /** Result regions for every thread's blocks: as many as a range of the batch's micro-shards can have. */
  function regionsFor(microShards: number): StepRegion[] {
    const blocks = 2 * treeHeight(Math.max(1, microShards)) + 1;
    if (blockRegions === null || blockRegions.blocks < blocks) {
      blockRegions = {
        blocks,
        regions: Array.from({ length: lanes.count }, () => lanes.region(new SharedArrayBuffer(blocks * gradLen * 4))),
      };
    }
    return blockRegions.regions;
  }

  function start(stepper: Stepper, job: BatchJob): Loop {
    const regions = regionsFor(job.microShards);
    const state = stateArrays(stepper.optimizer, stepper.optimizerState).map((s) => lanes.region(s.array.buffer as SharedArrayBuffer));
    startLoop(board, seq, regions.map((r) => r.id), state.map((r) => r.id), stepper.optimizer);
    let allOut = () => {};
    const out = new Promise<void>((resolve) => { allOut = resolve; });
    const l: Loop = { ahead: null, last: job.step - 1, waiter: null, ended: false, inside: lanes.count, out, allOut, written: false };
    lanes.enter(seq, [...regions, ...state], (lane, why) => left(l, lane, why));
    void watch(l);
    return l;
  }

  /**
   * Ends the loop: every thread leaves it (the ones computing after their
   * phase). A step the threads are already writing (all past ARMED) they
   * finish: a call waiting for it still gets it; one they are not, they
   * drop, and the call fails once they have all left.
   */
  function end(): void {
    if (loop === null) return;
    const l = loop;
    l.ended = true;
    loop = null;
    leaving = l;
    // A step not yet written by every thread is dropped (see ARMED in step-board.ts).
    for (const s of [l.waiter?.seq, l.ahead?.seq]) if (s !== undefined && Atomics.load(board.header, H.DONE) < s) cancelStep(board, s);
    exitSteps(board);
  }

  /**
   * A thread left the loop by failing or dying: the step waited for (or
   * the one worked ahead) fails, so that no thread waits for it, and the
   * loop ends.
   */
  function left(l: Loop, lane: number, why: LoopExit): void {
    l.inside--;
    if (l.inside === 0) l.allOut();
    if (l.inside === 0 && l.waiter !== null) {
      const done = Atomics.load(board.header, H.DONE) >= l.waiter.seq;
      l.waiter.settle(done ? { kind: 'done' } : { kind: 'failed', lane: -1, why: 'the step loop ended' });
    }
    if (l.ended || why.kind === 'left') return;
    const reason = `${why.kind === 'died' ? `its thread exited (${why.message})` : why.message} in the step loop`;
    const w = l.waiter;
    const seq = w?.seq ?? l.ahead?.seq;
    if (seq !== undefined) {
      const slot = slotOf(board, seq).words;
      if (Atomics.compareExchange(slot, S.FAILED, 0, 1 + lane) === 0) {
        l.written = !cancelStep(board, seq) && Atomics.load(board.header, H.DONE) < seq;
        Atomics.notify(slot, S.PERMIT);
        Atomics.notify(board.header, H.DONE);
      }
    }
    if (w !== null) {
      w.settle({ kind: 'failed', lane, why: reason });
    } else {
      o.log(`worker ${lanes.ids[lane]}: ${reason}; the loop starts again`);
      if (loop === l) end();
    }
  }

  /** Settles the waiting call when its step is DONE or FAILED (one waitAsync at a time on the DONE word). */
  async function watch(l: Loop): Promise<void> {
    while (!l.ended || l.waiter !== null) {
      const done = Atomics.load(board.header, H.DONE);
      const w = l.waiter;
      if (w !== null) {
        if (done >= w.seq) { w.settle({ kind: 'done' }); continue; }
        const failed = Atomics.load(slotOf(board, w.seq).words, S.FAILED);
        if (failed !== 0) { w.settle({ kind: 'failed', lane: failed - 1, why: 'it failed' }); continue; }
      }
      const r = waitAsync(board.header, H.DONE, done);
      if (r.async) await r.value;
    }
  }

  /** Writes a job into the next slot, `ahead` steps after the last one applied; returns its sequence number. */
  function post(job: BatchJob, stepper: Stepper, permit: boolean, ahead: number): number {
    const rows = job.indices.length;
    const k = shardCount(rows, job.microShards);
    const ranges = alignedSplit(0, k, new Array<number>(lanes.count).fill(1), CUT_TOLERANCE);
    const cuts = [0];
    for (let j = 0; j < lanes.count; j++) cuts.push(ranges.find((r) => r.slot === j)?.end ?? cuts[j]);
    const s = seq++;
    const update = stepper.optimizerState.step + ahead;
    postStep(board, { seq: s, step: job.step, version: ++weights.version, k, rows, lr: stepper.lr(job.step), update, cuts, indices: job.indices, permit });
    return s;
  }

  function wait(l: Loop, s: number): Promise<Waited> {
    return new Promise<Waited>((resolve) => {
      let timer: Timer | null = null;
      const settle = (r: Waited) => {
        if (l.waiter?.seq !== s) return;
        l.waiter = null;
        timer?.cancel();
        resolve(r);
      };
      l.waiter = { seq: s, settle };
      const check = () => {
        // Still computing after the step timeout: its range goes elsewhere. Applying: the weights are being written, wait.
        const w = slotOf(board, s).words;
        const late = Array.from({ length: lanes.count }, (_, j) => j).filter((j) => Atomics.load(w, S.PHASE + j) < PHASE_READY);
        if (late.length > 0) settle({ kind: 'stalled', late });
        else timer = clock.setTimer(check, o.stepTimeoutMs);
      };
      if (o.stepTimeoutMs > 0) timer = clock.setTimer(check, o.stepTimeoutMs);
      // The watcher sees later moves of the DONE word; this one, made before the waiter was set, it may have seen already.
      const failed = Atomics.load(slotOf(board, s).words, S.FAILED);
      if (Atomics.load(board.header, H.DONE) >= s) settle({ kind: 'done' });
      else if (failed !== 0) settle({ kind: 'failed', lane: failed - 1, why: 'it failed' });
    });
  }

  /** Waits for step s to be DONE, or for every thread to have left the loop without it (one died writing it). */
  async function untilDone(l: Loop, s: number): Promise<Waited> {
    for (;;) {
      const done = Atomics.load(board.header, H.DONE);
      if (done >= s) return { kind: 'done' };
      if (l.inside === 0) { l.written = true; return { kind: 'failed', lane: -1, why: 'the threads left the loop while writing the step' }; }
      const r = waitAsync(board.header, H.DONE, done, 50);
      if (r.async) await r.value;
    }
  }

  /** The step through the dispatcher and the trainer's applyStep here. */
  async function fallback(job: BatchJob, stepper: Stepper, why: string | null): Promise<StepOutcome> {
    if (why !== null) {
      stats.fallbacks++;
      o.log(`step ${job.step + 1}: ${why}; the step runs again through the dispatcher`);
    }
    return runStep(general, job, stepper, sum);
  }

  function account(s: number, k: number, rows: number): void {
    const slot = slotOf(board, s);
    const w = slot.words;
    stats.steps++;
    for (let j = 0; j < lanes.count; j++) {
      const t = phaseTimes(slot, j);
      stats.computeMs += t.computeMs / lanes.count;
      stats.waitMs += t.waitMs / lanes.count;
      stats.applyMs += t.applyMs / lanes.count;
      const a = w[S.CUT + j], b = w[S.CUT + j + 1];
      tally[j].microShards += b - a;
      if (b > a) { const [r0, r1] = rowsOf({ rows, k, start: a, end: b }); tally[j].samples += r1 - r0; }
      tally[j].busyMs += t.computeMs;
    }
  }

  return {
    get workers() { return general.workers; },
    async batchGradient(job, out) {
      end();
      await general.batchGradient(job, out);
    },
    async step(job, stepper, next) {
      if (broken !== null) throw broken;
      if (closing) throw dptError('DPT_ERR_WORKER', `step ${job.step + 1}: the run is shutting down`);
      if (!fits(stepper)) { end(); return fallback(job, stepper, null); }
      const t0 = performance.now();
      // Asked out of turn, or something else updated the weights since (their copies in the threads are stale): a new loop.
      if (loop !== null && (loop.last !== job.step - 1 || (loop.ahead !== null && loop.ahead.step !== job.step))) end();
      if (loop === null) {
        // After a fallback, a thread may still be finishing a step of the old loop, or a range.
        // The threads are still leaving the loop that ended (steps ran elsewhere meanwhile, the default engine's
        // other engine): they are out within a step's compute, which costs less than a step through the dispatcher.
        if (!lanes.idle() && leaving !== null && leaving.inside > 0) {
          const l = leaving;
          let cancel = () => {};
          await Promise.race([l.out, new Promise<void>((resolve) => { const t = clock.setTimer(resolve, LEAVING_WAIT_MS); cancel = () => t.cancel(); })]);
          cancel();
          if (closing) throw dptError('DPT_ERR_WORKER', `step ${job.step + 1}: the run is shutting down`);
        }
        if (!lanes.idle()) return fallback(job, stepper, null);
        loop = start(stepper, job);
      }
      const l = loop;
      const s = l.ahead?.seq ?? post(job, stepper, false, 1);
      l.ahead = null;
      // The penalty of the weights before the step: read before the permit lets the threads write them.
      const penalty = penalized ? stepPenalty(model) : 0;
      permitStep(board, s);
      if (next !== undefined) l.ahead = { seq: post(next, stepper, false, 2), step: next.step };
      stats.postMs += performance.now() - t0;
      const waiting = wait(l, s);
      inflight = waiting;
      let waited = await waiting;
      const w = slotOf(board, s).words;
      const rows = w[S.ROWS];
      if (waited.kind === 'stalled' && !cancelStep(board, s)) {
        // Every thread armed meanwhile (the late one finished computing): they are writing the step.
        waited = await untilDone(l, s);
      }
      inflight = null;
      if (waited.kind === 'done') {
        l.last = job.step;
        stepper.optimizerState.step++;
        account(s, w[S.K], rows);
        const dataLoss = lossOf(slotOf(board, s)) / rows;
        return { result: { loss: dataLoss + penalty, dataLoss, penalty, samples: rows }, lr: stepper.lr(job.step) };
      }
      end();
      if (closing) throw dptError('DPT_ERR_WORKER', `step ${job.step + 1}: the run is shutting down`);
      if (waited.kind === 'failed' && l.written) {
        const who = waited.lane >= 0 ? `worker ${lanes.ids[waited.lane]}` : 'a worker thread';
        broken = dptError('DPT_ERR_WORKER', `step ${job.step + 1}: ${who} failed while the threads applied the step (${waited.why}): ` +
          'its slice of the weights may be half written; resume from the last checkpoint');
        throw broken;
      }
      const why = waited.kind === 'stalled'
        ? `stalled: ${waited.late.map((j) => `worker ${lanes.ids[j]}`).join(', ')} had not computed ${waited.late.length === 1 ? 'its' : 'their'} micro-shards after ${o.stepTimeoutMs} ms`
        : `worker ${waited.lane >= 0 ? lanes.ids[waited.lane] : '?'} failed: ${waited.why}`;
      return fallback(job, stepper, why);
    },
    stats(): EngineStats {
      return { ...general.stats!(), loop: { ...stats } };
    },
    summaries(): WorkerSummary[] {
      return (general.summaries?.() ?? []).map((w) => {
        const j = lanes.ids.indexOf(w.id);
        if (j < 0 || tally[j].microShards === 0) return w;
        const t = tally[j];
        const rate = t.busyMs > 0 ? (t.samples / t.busyMs) * 1000 : 0;
        const total = w.microShards + t.microShards;
        return { ...w, microShards: total, samplesPerSec: (w.samplesPerSec * w.microShards + rate * t.microShards) / total };
      });
    },
    stepDone: general.stepDone,
    async close(outcome) {
      closing = true;
      end();
      // The threads leave the loop (finishing a step they were writing): until then the transport serves them.
      await inflight;
      await general.close(outcome);
    },
  };
}
