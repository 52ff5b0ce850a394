// The step loop, thread side (the board and its protocol: step-board.ts).
// A thread ordered into the loop runs whole steps from the board until the
// coordinator makes it leave: its micro-shard range's blocks (the same code
// as a range order, src/train/range.ts), then its slice of the reduction
// and of the update (src/train/step.ts applySlice), so that no step waits
// for a serial share of the coordinator's.
//
// It leaves the loop when the board's EXIT word changes, or when a step
// fails (another thread's, or its own: an invalid step, a throw), after
// marking the step FAILED; the coordinator then runs that step through its
// dispatcher (if no weight was written yet) and stops the loop.
import { dptError } from '../errors.js';
import type { Model } from '../model/model.js';
import { isAdam, type OptimizerState } from '../optim/optimizer.js';
import { alignedBlocks, combineNode, nodeKey, treeHeight, type NodeRounding } from '../reduce/tree.js';
import { nodeRounding, type GradWire } from '../reduce/bf16.js';
import { allocFloats } from '../tensor/alloc.js';
import { vector } from '../tensor/vector.js';
import { rowsOf, type RangeRequest, type RangeWorker } from '../train/range.js';
import { applySlice, planStep, type StepPlan } from '../train/step.js';
import {
  ARMED_CANCEL, cancelStep, H, lrOf, markApplied, markTime, optimizerOf, PHASE_APPLYING, PHASE_COMPUTING, PHASE_READY, S, setLoss, sliceOf, slotOf, updateOf, type StepBoard,
} from './board.js';

/** What the step loop needs of a thread's session. */
export interface StepSession {
  /** --grad-wire: bf16 rounds every tree node the thread forms (its blocks, and its slice's combine). */
  readonly wire: GradWire;
  /** The rounding of whole vectors (undefined: f32). */
  readonly round?: NodeRounding;
  readonly worker: RangeWorker;
  /** The master weights (shared): read whole before a step, written a slice at a time. */
  readonly shared: Float32Array;
}

/** Per session, built at the first loop: the step plan, the summed slice, the tree's scratch. */
const scratchOf = new WeakMap<Model, { plan: StepPlan; sum: Float32Array; tree: Float32Array[]; own: Float32Array[]; state: Float32Array[] }>();

/** How long a thread spins for the coordinator before it sleeps (for the other threads it spins up to spinUs). */
const COORDINATOR_SPIN_US = 50;

/** A gap this long between two looks at the clock while spinning means the core was taken from us. */
export const PREEMPTED_MS = 0.05;

/** What waitFor waits for: the word equal to a value, at least a value, or other than a value. */
export const EQUAL = 0;
export const AT_LEAST = 1;
export const NOT_EQUAL = 2;
type Until = typeof EQUAL | typeof AT_LEAST | typeof NOT_EQUAL;

/**
 * What ends a wait early: exit[exitIndex] moved off exitAt (the loop's EXIT
 * word, a mailbox's STOP), or failed[failedIndex] is no longer 0 (a step's
 * FAILED word).
 */
export interface Leave {
  readonly exit: Int32Array;
  readonly exitIndex: number;
  readonly exitAt: number;
  readonly failed: Int32Array | null;
  readonly failedIndex: number;
}

function reached(until: Until, value: number, v: number): boolean {
  return until === EQUAL ? v === value : until === AT_LEAST ? v >= value : v !== value;
}

function gone(leave: Leave | null): boolean {
  return leave !== null
    && (Atomics.load(leave.exit, leave.exitIndex) !== leave.exitAt || (leave.failed !== null && Atomics.load(leave.failed, leave.failedIndex) !== 0));
}

/**
 * Waits until arr[index] is `until` `value` (EQUAL, AT_LEAST, NOT_EQUAL) or
 * `leave` says to stop: spins for up to spinUs, then sleeps on the word
 * (whoever changes it notifies). With `yieldOnPreempt`, the spin stops early
 * when the thread finds it was preempted: something else wants the core
 * (the coordinator, other processes), and a spinning thread would only take
 * it from them. False if it left.
 *
 * The condition is data, not a callback: with a closure per call, V8
 * optimized the loop for one closure, threw the code away at the next
 * (100 deoptimizations in 2,500 steps of the default config) and recompiled
 * it on the cores the threads compute on.
 */
export function waitFor(
  arr: Int32Array, index: number, until: Until, value: number, leave: Leave | null, spinUs: number, yieldOnPreempt = false,
): boolean {
  let v = Atomics.load(arr, index);
  if (reached(until, value, v)) return true;
  if (spinUs > 0) {
    let last = performance.now();
    const deadline = last + spinUs / 1000;
    for (let n = 1; ; n++) {
      v = Atomics.load(arr, index);
      if (reached(until, value, v)) return true;
      // Reading the clock costs more than the word: every 64 loads.
      if ((n & 63) !== 0) continue;
      if (gone(leave)) return false;
      const now = performance.now();
      if (now > deadline || (yieldOnPreempt && now - last > PREEMPTED_MS)) break;
      last = now;
    }
  }
  for (;;) {
    v = Atomics.load(arr, index);
    if (reached(until, value, v)) return true;
    if (gone(leave)) return false;
    // A bounded sleep: the words that end the wait (EXIT, FAILED) are not the one slept on.
    Atomics.wait(arr, index, v, 50);
  }
}

export interface StepLoopOrder {
  /** This thread's index and the number of threads in the loop. */
  lane: number;
  lanes: number;
  /** The first step's sequence number. */
  firstSeq: number;
  /** The result region of every thread, by index. */
  regions: readonly Float32Array[];
  /** The optimizer's shared state arrays (board order: SGD's velocity, none without momentum; Adam's m and v). */
  state: readonly Float32Array[];
}

/** The step's micro-shard cuts (reused: one array per thread). */
const cutsBuffer: number[] = [];
function cutsOf(w: Int32Array, lanes: number): number[] {
  cutsBuffer.length = lanes + 1;
  for (let j = 0; j <= lanes; j++) cutsBuffer[j] = w[S.CUT + j];
  return cutsBuffer;
}

/**
 * Runs steps from the board until told to leave; returns the steps applied.
 * Throws (after marking the step FAILED) if a step cannot be computed.
 */
export function runStepLoop(session: StepSession, board: StepBoard, o: StepLoopOrder, spinUs: number): number {
  const { worker, shared: weights } = session;
  const model = worker.model;
  const gradLen = worker.gradLen;
  let scratch = scratchOf.get(model);
  if (scratch === undefined) {
    scratch = { plan: planStep(model), sum: allocFloats(gradLen), tree: [], own: [], state: [] };
    scratchOf.set(model, scratch);
  }
  const { plan, sum, tree, own: mine } = scratch;
  const { lane, lanes } = o;
  const [from, to] = sliceOf(gradLen, lanes, lane);
  // --grad-wire bf16: the nodes this thread forms in its slice, rounded on the slice's trainable elements.
  const roundSlice = nodeRounding(session.wire, model.numTrainable - from);
  const { optimizer } = optimizerOf(board);
  // This thread's slice of the weights and of the optimizer's state arrays: in its own memory, where
  // its update runs in place, written out to the shared buffers after every step. Only the threads
  // write them while the loop runs, so after the first step the thread's copies of its slices are current.
  const vHi = Math.min(to, model.numTrainable);
  const shared = o.state;
  while (scratch.state.length < shared.length) scratch.state.push(allocFloats(model.numTrainable));
  const local = scratch.state.slice(0, shared.length);
  for (let i = 0; i < shared.length; i++) if (from < vHi) local[i].set(shared[i].subarray(from, vHi), from);
  const none = new Float32Array(0);
  const adam = isAdam(optimizer);
  const state: OptimizerState = {
    velocity: !adam && local.length > 0 ? local[0] : none, m: adam ? local[0] : none, v: adam ? local[1] : none, step: 0,
  };
  let current: [number, number] | undefined;
  // The combine's views of the blocks, for the last (k, cuts): the same for most steps. With two
  // threads of one block each, the root's two children, the slice is this thread's block plus the
  // other's (float32 addition commutes: the tree's bits): `other` is then that, and this thread's
  // block goes straight into the sum.
  let combining: { k: number; cuts: number[]; blocks: Map<string, Float32Array>; other: Float32Array | null } | null = null;
  const sumSlice = sum.subarray(from, to);
  /** How this thread's slice of a step cut at `cuts` is combined (see `combining`). */
  function combinePlan(k: number, cuts: readonly number[]): NonNullable<typeof combining> {
    const blocks = new Map<string, Float32Array>();
    const nodes: { lane: number; level: number; index: number; view: Float32Array }[] = [];
    for (let j = 0; j < lanes; j++) {
      if (cuts[j] === cuts[j + 1]) continue;
      alignedBlocks(k, cuts[j], cuts[j + 1]).forEach((node, b) => {
        if (j === lane && mine[b]?.length !== to - from) mine[b] = allocFloats(to - from);
        const view = j === lane ? mine[b] : o.regions[j].subarray(b * gradLen + from, b * gradLen + to);
        blocks.set(nodeKey(node.level, node.index), view);
        nodes.push({ lane: j, level: node.level, index: node.index, view });
      });
    }
    const h = treeHeight(k);
    const children = nodes.length === 2 && h > 0 && nodes.every((n, i) => n.level === h - 1 && n.index === i);
    const other = children && nodes.some((n) => n.lane === lane) ? nodes.find((n) => n.lane !== lane)!.view : null;
    return { k, cuts: [...cuts], blocks, other };
  }
  const exitAt = Atomics.load(board.header, H.EXIT);
  const exited: Leave = { exit: board.header, exitIndex: H.EXIT, exitAt, failed: null, failedIndex: 0 };
  // Per slot: the loop exited, or the slot's step failed.
  const failedIn = board.slots.map((slot): Leave => ({ ...exited, failed: slot.words, failedIndex: S.FAILED }));
  let applied = 0;
  for (let seq = o.firstSeq; ; seq++) {
    const slot = slotOf(board, seq);
    const w = slot.words;
    // The coordinator's turn (the step not posted yet, or not permitted): a short spin, then the core is
    // left to it (two spinning threads on two cores would keep it from running at all).
    if (!waitFor(w, S.SEQ, EQUAL, seq, exited, COORDINATOR_SPIN_US)) return applied;
    const failed = failedIn[board.slots.indexOf(slot)];
    try {
      const k = w[S.K];
      const rows = w[S.ROWS];
      const cuts = cutsOf(w, lanes);
      const range = { step: w[S.STEP], k, rows, start: cuts[lane], end: cuts[lane + 1] };
      if (!(cuts[0] === 0 && cuts[lanes] === k && cuts.every((c, j) => j === 0 || c >= cuts[j - 1]))) {
        throw dptError('DPT_ERR_MESSAGE', `worker thread: step ${range.step + 1}: micro-shard cuts ${cuts.join(' ')} do not tile [0, ${k})`);
      }
      const [r0, r1] = k >= 1 && k <= rows && rows <= slot.indices.length && range.start < range.end ? rowsOf(range) : [0, 0];
      const request: RangeRequest = { ...range, indices: slot.indices.subarray(r0, r1) };
      // A thread may have no micro-shard (more threads than micro-shards): it still applies its slice.
      const problem = range.start === range.end ? null : worker.check(request);
      if (problem !== null) throw dptError('DPT_ERR_MESSAGE', `worker thread: step ${range.step + 1}: ${problem}`);
      Atomics.store(w, S.PHASE + lane, PHASE_COMPUTING);
      // The weights are whole once every thread has applied the step before.
      if (!waitFor(board.header, H.DONE, AT_LEAST, seq - 1, failed, spinUs)) return applied;
      markTime(slot, lane, 0);
      worker.setWeights(w[S.VERSION], weights, current);
      const own = o.regions[lane];
      if (combining === null || combining.k !== k || combining.cuts.some((c, j) => c !== cuts[j])) combining = combinePlan(k, cuts);
      const pair = combining.other !== null;
      if (request.start < request.end) {
        worker.compute(request, (b, _node, blockSum) => {
          if ((b + 1) * gradLen > own.length) throw dptError('DPT_ERR_MESSAGE', `worker thread: result region too small for block ${b}`);
          // The other threads' slices go to the shared region; this thread's stays in its own memory.
          if (from > 0) own.set(blockSum.subarray(0, from), b * gradLen);
          if (to < gradLen) own.set(blockSum.subarray(to), b * gradLen + to);
          (pair ? sumSlice : mine[b]).set(blockSum.subarray(from, to));
        }, session.round);
      }
      markTime(slot, lane, 1);
      Atomics.store(w, S.PHASE + lane, PHASE_READY);
      Atomics.add(w, S.READY, 1);
      if (!waitFor(w, S.PERMIT, EQUAL, 1, failed, COORDINATOR_SPIN_US)) return applied;
      // Armed, this thread no longer leaves on EXIT: only a cancel, which none can make once all are armed.
      const armed = Atomics.add(w, S.ARMED, 1);
      if ((armed & ARMED_CANCEL) !== 0) return applied;
      if (armed + 1 === lanes) Atomics.notify(w, S.ARMED);
      // All armed, or cancelled: the cancel bit (1 << 30) makes the word at least `lanes` too.
      waitFor(w, S.ARMED, AT_LEAST, lanes, null, spinUs);
      if ((Atomics.load(w, S.ARMED) & ARMED_CANCEL) !== 0) return applied;
      markTime(slot, lane, 2);
      Atomics.store(w, S.PHASE + lane, PHASE_APPLYING);
      // This thread's slice of every thread's blocks, combined in the tree's order.
      if (combining.other !== null) {
        vector().addInto(sumSlice, combining.other, sumSlice.length);
        roundSlice?.(sumSlice); // the root, formed here
      } else {
        combineNode(k, treeHeight(k), 0, combining.blocks, sumSlice, tree, roundSlice);
      }
      if (from <= model.size && model.size < to) setLoss(slot, sum[model.size]);
      // The update of the slice on this thread's copy of the weights, then into the master weights.
      state.step = updateOf(slot) - 1;
      applySlice(model, plan, sum, optimizer, state, lrOf(slot), rows, from, to);
      const hi = Math.min(to, model.size);
      if (from < hi) weights.set(model.params.subarray(from, hi), from);
      for (let i = 0; i < shared.length; i++) if (from < vHi) shared[i].set(local[i].subarray(from, vHi), from);
      current = [from, hi];
      markApplied(board, seq, lane, lanes);
      applied++;
    } catch (err) {
      if (Atomics.compareExchange(w, S.FAILED, 0, 1 + lane) === 0) {
        cancelStep(board, seq);
        Atomics.notify(w, S.PERMIT);
        Atomics.notify(board.header, H.DONE);
      }
      throw err;
    }
  }
}
