// One round of a benchmark: `steps` timed training steps of an engine, after
// `lead` untimed ones, and where their time went (the coordinator's own
// share, the hand-off to threads, the step loop's phases, bytes on the
// wire). Shared by bench:scaling and bench:cluster, so both time a step the
// way the trainer takes it (runStep: the engine's own step where it has one).
import type { EngineStats, GradientEngine } from '../coordinator/engines/engine.js';
import type { Stepper } from '../coordinator/run/stepper.js';

export type Workers = number | 'default';

export interface Runner {
  workers: Workers;
  engine: GradientEngine;
  stepper: Stepper;
  sum: Float32Array;
  step: number;
}

/** Per step (ms): the coordinator's own work, and per order on a thread: posted to noticed, noticed to answered, answered to taken. */
export interface Round {
  seconds: number; dispatchMs: number; combineMs: number; applyMs: number; wakeMs: number; workMs: number; replyMs: number;
  /** The step loop's, per step: a thread's computing, waiting for the others, reducing + applying its slice; steps sent to the dispatcher instead. */
  loopComputeMs: number; loopWaitMs: number; loopApplyMs: number; fallbacks: number;
  /** Per step: waiting for the workers (dispatch to the last answer), the workers' own compute summed, bytes to and from network workers. */
  waitMs: number; workerMs: number; bytes: number;
  /** The collective's, per collective step: ordered to computed by every member, then to the sum whole at the coordinator. */
  collectiveComputeMs: number; collectiveExchangeMs: number;
}

/**
 * Runs `lead` untimed steps, then `steps` timed ones. The lead-in takes what
 * only the first steps after another configuration's turn pay (caches that
 * turn evicted, threads that fell asleep during it), which a run does not.
 */
export async function runSteps(r: Runner, steps: number, lead = 0): Promise<Round> {
  let before = r.engine.stats?.();
  let wire0 = r.engine.wireBytes?.();
  let applyMs = 0;
  let t0 = performance.now();
  for (let i = 0; i < lead + steps; i++) {
    if (i === lead) {
      before = r.engine.stats?.();
      wire0 = r.engine.wireBytes?.();
      t0 = performance.now();
    }
    // Stay inside the first epoch's permutation pattern; the figures do not depend on which samples.
    const step = r.step++ % r.stepper.lastStep;
    // Only within the round: work started for after it would run during the next configuration's turn.
    const next = i + 1 < lead + steps ? r.stepper.job((step + 1) % r.stepper.lastStep) : undefined;
    // The default engine that chose the coordinator's thread computes as --workers 0 does: timed the same way.
    if (r.engine.step !== undefined && r.engine.choice?.()?.workers !== 0) {
      // The engine's workers apply the step themselves (their share of it is in their time).
      await r.engine.step(r.stepper.job(step), r.stepper, next);
    } else {
      await r.engine.batchGradient(r.stepper.job(step), r.sum);
      const a = performance.now();
      r.stepper.apply(step, r.sum);
      if (i >= lead) applyMs += performance.now() - a;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = r.engine.stats?.();
  const wire1 = r.engine.wireBytes?.();
  const h0 = before?.handoff, h1 = after?.handoff;
  const orders = h0 && h1 ? h1.orders - h0.orders : 0;
  const perOrder = (k: 'wakeMs' | 'workMs' | 'replyMs') => (orders > 0 ? (h1![k] - h0![k]) / orders : 0);
  const l0 = before?.loop, l1 = after?.loop;
  const loopSteps = l0 && l1 ? l1.steps - l0.steps : 0;
  const perStep = (k: 'computeMs' | 'waitMs' | 'applyMs') => (loopSteps > 0 ? (l1![k] - l0![k]) / loopSteps : 0);
  const per = (k: 'combineMs' | 'waitMs' | 'workerMs') => (before && after ? (after[k] - before[k]) / steps : 0);
  return {
    seconds, applyMs: applyMs / steps,
    loopComputeMs: perStep('computeMs'), loopWaitMs: perStep('waitMs'), loopApplyMs: perStep('applyMs'),
    fallbacks: l0 && l1 ? l1.fallbacks - l0.fallbacks : 0,
    dispatchMs: before && after ? (after.dispatchMs - before.dispatchMs + (l0 && l1 ? l1.postMs - l0.postMs : 0)) / steps : 0,
    combineMs: per('combineMs'), waitMs: per('waitMs'), workerMs: per('workerMs'),
    wakeMs: perOrder('wakeMs'), workMs: perOrder('workMs'), replyMs: perOrder('replyMs'),
    bytes: wire0 && wire1 ? (wire1.sent + wire1.received - wire0.sent - wire0.received) / steps : 0,
    ...collectivePer(before?.collective, after?.collective),
  };
}

/**
 * Runs untimed steps for at least `ms` milliseconds (and `minSteps` steps).
 * Until the JIT has compiled the hot code of every isolate (one per worker
 * thread, each compiling its own on the same cores), a few hundred steps
 * run slower: a figure taken before that measures compilation, not a run.
 */
export async function warmUp(r: Runner, ms: number, minSteps: number): Promise<void> {
  const until = performance.now() + ms;
  for (let done = 0; done < minSteps || performance.now() < until; done += 10) await runSteps(r, 10);
}

function collectivePer(a: EngineStats['collective'], b: EngineStats['collective']): { collectiveComputeMs: number; collectiveExchangeMs: number } {
  const n = a !== undefined && b !== undefined ? b.steps - a.steps : 0;
  return n > 0 ? { collectiveComputeMs: (b!.computeMs - a!.computeMs) / n, collectiveExchangeMs: (b!.exchangeMs - a!.exchangeMs) / n } : { collectiveComputeMs: 0, collectiveExchangeMs: 0 };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
