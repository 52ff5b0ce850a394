// The step board: shared memory through which the coordinator runs whole
// training steps on its worker threads ("the step loop", thread-steps.ts on
// both sides), with nothing posted per step and no serial share of its own.
//
// Per step the coordinator writes the step's job into one of two slots
// (slot = step sequence number % 2, so it can write the next step while the
// threads work on this one) and every thread:
//   1. copies the weights, computes the aligned blocks of its micro-shard
//      range [cut[i], cut[i+1]) into its result region, and counts itself
//      READY;
//   2. once the coordinator has set PERMIT (it does so when the trainer asks
//      for the step: until then the weights of the last step stay untouched
//      for it to read), counts itself ARMED, and once all are (so all blocks
//      are written, and every thread is alive), combines ITS SLICE of the
//      gradient vector from every thread's blocks in the fixed tree order,
//      and applies the step to that slice of the weights, the optimizer state
//      and the statistics (src/train/step.ts applySlice: the same operations
//      per element as the coordinator's applyStep, so the same bits);
//   3. counts itself APPLIED (the last one stores the step's sequence number
//      in DONE), and goes on to the next slot, whose weights it copies once
//      DONE says every slice is written.
// The coordinator only orders steps: it writes slots, sets PERMIT, and
// awaits DONE (Atomics.waitAsync).
//
// Words are Int32 (a store of the sequence word publishes the slot's other
// fields); the learning rate and the loss sum are float64; each slot has
// room for one batch of sample indices.

import { isAdam, type OptimizerConfig } from '../optim/optimizer.js';

/** Most threads a board serves. */
export const MAX_LANES = 64;

/** Header words. */
export const H = {
  /** Incremented to make every thread leave the step loop. */
  EXIT: 0,
  /** Threads in the loop. */
  LANES: 1,
  /** 1 with Nesterov momentum. */
  NESTEROV: 2,
  /**
   * The sequence number of the last step every thread has applied: the
   * weights are whole again (the threads wait for it before they copy them
   * for the next step, the coordinator to answer the trainer). Monotonic,
   * unlike a slot's counters, which the coordinator resets as it reuses it.
   */
  DONE: 3,
  /** Result region ids of the optimizer's state arrays, STATE + 0 and + 1 (SGD: the velocity; Adam: m, v; -1: none). */
  STATE: 4,
  /** The optimizer: OPT_SGD, OPT_ADAM or OPT_ADAMW. */
  OPTIMIZER: 6,
  /** Result region id of each thread's blocks: REGIONS + i. */
  REGIONS: 8,
} as const;
const HEADER_WORDS = H.REGIONS + MAX_LANES;
/** Header float64 slots: momentum, weight decay, Adam's betas and eps. */
const F_MU = 0;
const F_WD = 1;
const F_B1 = 2;
const F_B2 = 3;
const F_EPS = 4;
const HEADER_F64 = 5;
/** Optimizer kinds (H.OPTIMIZER). */
const OPT_SGD = 0;
const OPT_ADAM = 1;
const OPT_ADAMW = 2;
/** State arrays the board names (H.STATE + i). */
export const MAX_STATE_ARRAYS = 2;

/** Slot words, from the slot's first word. */
export const S = {
  /** The step sequence number this slot holds (written last). */
  SEQ: 0,
  STEP: 1,
  VERSION: 2,
  K: 3,
  ROWS: 4,
  /** 1 once the coordinator lets the threads write the weights for this step. */
  PERMIT: 5,
  /** Threads whose blocks are written. */
  READY: 6,
  /** Threads whose slice is applied. */
  APPLIED: 7,
  /** 0, or 1 + the index of a thread that failed this step (it leaves the loop). */
  FAILED: 8,
  /**
   * Threads past the permit, about to write (the low bits), and ARMED_CANCEL:
   * none writes before all are, and once ARMED_CANCEL is set none does.
   * Whoever ends a step early (the coordinator, a thread that fails) sets it
   * (cancelStep), unless it comes too late (all were armed: the step will be
   * written whole). So a step is written by every
   * thread or by none, and a thread that dies before arming leaves every
   * weight untouched: the step can run again elsewhere.
   */
  ARMED: 9,
  /** The 1-based number of the optimizer update this step makes (Adam's bias correction counts it). */
  UPDATE: 10,
  /** Micro-shard cuts: thread i computes [CUT + i, CUT + i + 1). */
  CUT: 16,
  /** Per thread: PHASE_* (how far it got in this step). */
  PHASE: 16 + MAX_LANES + 1,
} as const;
const SLOT_WORDS = S.PHASE + MAX_LANES;
/** Slot float64s: the learning rate, the batch's loss sum, then per thread when (clock(), ms) it started, was READY, began and ended applying. */
const SF_LR = 0;
const SF_LOSS = 1;
const SF_TIMES = 2;
const SLOT_F64 = SF_TIMES + 4 * MAX_LANES;

/** The cancel bit of the ARMED word. */
export const ARMED_CANCEL = 1 << 30;

/**
 * Cancels step seq unless every thread has armed already; true if cancelled
 * (no thread writes it). A compare-and-swap: the cancel bit is never set
 * once all have armed, so a thread that finds it set knows the step is off.
 */
export function cancelStep(board: StepBoard, seq: number): boolean {
  const w = slotOf(board, seq).words;
  const lanes = Atomics.load(board.header, H.LANES);
  for (;;) {
    const v = Atomics.load(w, S.ARMED);
    if ((v & ARMED_CANCEL) !== 0) return true;
    if (v >= lanes) return false;
    if (Atomics.compareExchange(w, S.ARMED, v, v | ARMED_CANCEL) === v) {
      Atomics.notify(w, S.ARMED);
      return true;
    }
  }
}

export const PHASE_COMPUTING = 1;
export const PHASE_READY = 2;
export const PHASE_APPLYING = 3;
export const PHASE_APPLIED = 4;

export interface BoardSlot {
  readonly words: Int32Array;
  readonly f64: Float64Array;
  readonly indices: Uint32Array;
}

export interface StepBoard {
  readonly buffer: SharedArrayBuffer;
  readonly header: Int32Array;
  readonly headerF64: Float64Array;
  readonly slots: readonly [BoardSlot, BoardSlot];
}

/** Byte layout: header words, header float64s, then per slot: words, float64s, indices. */
function layout(maxRows: number): { slotBytes: number; headerBytes: number } {
  const headerBytes = align8(HEADER_WORDS * 4) + HEADER_F64 * 8;
  const slotBytes = align8(align8(SLOT_WORDS * 4) + SLOT_F64 * 8 + maxRows * 4);
  return { slotBytes, headerBytes };
}

function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/** A zeroed board for batches of up to maxRows rows. */
export function createStepBoard(maxRows: number): StepBoard {
  const { slotBytes, headerBytes } = layout(maxRows);
  return openStepBoard(new SharedArrayBuffer(headerBytes + 2 * slotBytes), maxRows);
}

export function openStepBoard(buffer: SharedArrayBuffer, maxRows: number): StepBoard {
  const { slotBytes, headerBytes } = layout(maxRows);
  if (buffer.byteLength !== headerBytes + 2 * slotBytes) {
    throw new RangeError(`a step board for ${maxRows} rows has ${headerBytes + 2 * slotBytes} bytes, got ${buffer.byteLength}`);
  }
  const slot = (i: number): BoardSlot => {
    const at = headerBytes + i * slotBytes;
    const f64At = at + align8(SLOT_WORDS * 4);
    return {
      words: new Int32Array(buffer, at, SLOT_WORDS),
      f64: new Float64Array(buffer, f64At, SLOT_F64),
      indices: new Uint32Array(buffer, f64At + SLOT_F64 * 8, maxRows),
    };
  };
  return {
    buffer,
    header: new Int32Array(buffer, 0, HEADER_WORDS),
    headerF64: new Float64Array(buffer, align8(HEADER_WORDS * 4), HEADER_F64),
    slots: [slot(0), slot(1)],
  };
}

/** The slot of step sequence number seq. */
export function slotOf(board: StepBoard, seq: number): BoardSlot {
  return board.slots[seq % 2];
}

/**
 * Readies the board for a loop of `lanes` threads whose first step is
 * firstSeq: the result regions of their blocks and of the optimizer's state
 * arrays (optimizerState's order: the velocity, or Adam's m and v), and the
 * optimizer's constants (the learning rate and the update number come per
 * step).
 */
export function startLoop(
  board: StepBoard, firstSeq: number, regions: readonly number[], stateRegions: readonly number[], optimizer: OptimizerConfig,
): void {
  const lanes = regions.length;
  if (lanes > MAX_LANES) throw new RangeError(`a step board serves at most ${MAX_LANES} threads, got ${lanes}`);
  if (stateRegions.length > MAX_STATE_ARRAYS) throw new RangeError(`a step board names at most ${MAX_STATE_ARRAYS} state arrays, got ${stateRegions.length}`);
  for (let i = 0; i < lanes; i++) Atomics.store(board.header, H.REGIONS + i, regions[i]);
  for (let i = 0; i < MAX_STATE_ARRAYS; i++) Atomics.store(board.header, H.STATE + i, stateRegions[i] ?? -1);
  Atomics.store(board.header, H.DONE, firstSeq - 1);
  Atomics.store(board.header, H.LANES, lanes);
  const f = board.headerF64;
  f[F_WD] = optimizer.weightDecay;
  if (isAdam(optimizer)) {
    Atomics.store(board.header, H.OPTIMIZER, optimizer.type === 'adam' ? OPT_ADAM : OPT_ADAMW);
    [f[F_B1], f[F_B2]] = optimizer.betas;
    f[F_EPS] = optimizer.eps;
  } else {
    Atomics.store(board.header, H.OPTIMIZER, OPT_SGD);
    Atomics.store(board.header, H.NESTEROV, optimizer.nesterov ? 1 : 0);
    f[F_MU] = optimizer.momentum;
  }
}

/** The loop's thread count and optimizer (its lr is a placeholder: each step has its own). */
export function optimizerOf(board: StepBoard): { lanes: number; optimizer: OptimizerConfig } {
  const f = board.headerF64;
  const kind = Atomics.load(board.header, H.OPTIMIZER);
  const optimizer: OptimizerConfig = kind === OPT_SGD
    ? { lr: 1, momentum: f[F_MU], weightDecay: f[F_WD], nesterov: Atomics.load(board.header, H.NESTEROV) === 1 }
    : { type: kind === OPT_ADAM ? 'adam' : 'adamw', lr: 1, betas: [f[F_B1], f[F_B2]], eps: f[F_EPS], weightDecay: f[F_WD] };
  return { lanes: Atomics.load(board.header, H.LANES), optimizer };
}

/** One step as the coordinator posts it. */
export interface BoardStep {
  seq: number;
  step: number;
  version: number;
  k: number;
  rows: number;
  lr: number;
  /** The 1-based number of the optimizer update this step makes. */
  update: number;
  /** lanes + 1 micro-shard cuts. */
  cuts: readonly number[];
  indices: ArrayLike<number>;
  permit: boolean;
}

/** Writes a step into its slot (the threads start on it at once) and wakes them. */
export function postStep(board: StepBoard, s: BoardStep): void {
  const slot = slotOf(board, s.seq);
  const w = slot.words;
  w[S.STEP] = s.step;
  w[S.VERSION] = s.version;
  w[S.K] = s.k;
  w[S.ROWS] = s.rows;
  w[S.UPDATE] = s.update;
  w[S.READY] = 0;
  w[S.ARMED] = 0;
  w[S.APPLIED] = 0;
  w[S.FAILED] = 0;
  for (let i = 0; i < s.cuts.length; i++) w[S.CUT + i] = s.cuts[i];
  for (let i = 0; i < MAX_LANES; i++) w[S.PHASE + i] = 0;
  slot.f64[SF_LR] = s.lr;
  slot.f64[SF_LOSS] = 0;
  slot.indices.set(s.indices);
  Atomics.store(w, S.PERMIT, s.permit ? 1 : 0);
  Atomics.store(w, S.SEQ, s.seq);
  Atomics.notify(w, S.SEQ);
}

/** Lets the threads write the weights for step seq. */
export function permitStep(board: StepBoard, seq: number): void {
  const w = slotOf(board, seq).words;
  Atomics.store(w, S.PERMIT, 1);
  Atomics.notify(w, S.PERMIT);
}

/** Makes every thread leave the loop (at once if it waits, after its current phase if it works). */
export function exitSteps(board: StepBoard): void {
  Atomics.add(board.header, H.EXIT, 1);
  Atomics.notify(board.header, H.DONE);
  for (const slot of board.slots) {
    for (const word of [S.SEQ, S.ARMED, S.PERMIT]) Atomics.notify(slot.words, word);
  }
}

/** Counts thread `lane` done with step seq; the last one marks the step DONE (and returns true). */
export function markApplied(board: StepBoard, seq: number, lane: number, lanes: number): boolean {
  const slot = slotOf(board, seq);
  markTime(slot, lane, 3);
  const w = slot.words;
  Atomics.store(w, S.PHASE + lane, PHASE_APPLIED);
  if (Atomics.add(w, S.APPLIED, 1) + 1 !== lanes) return false;
  Atomics.store(board.header, H.DONE, seq);
  Atomics.notify(board.header, H.DONE);
  return true;
}

/** Thread `lane`'s timestamps in the slot: 0 started, 1 READY, 2 applying, 3 APPLIED. */
export function markTime(slot: BoardSlot, lane: number, which: 0 | 1 | 2 | 3): void {
  slot.f64[SF_TIMES + 4 * lane + which] = performance.timeOrigin + performance.now();
}

/** Thread `lane`'s phases in ms: computing (start to READY), waiting for the others (and the permit), reducing and applying its slice. */
export function phaseTimes(slot: BoardSlot, lane: number): { computeMs: number; waitMs: number; applyMs: number } {
  const t = slot.f64.subarray(SF_TIMES + 4 * lane, SF_TIMES + 4 * lane + 4);
  return { computeMs: t[1] - t[0], waitMs: t[2] - t[1], applyMs: t[3] - t[2] };
}

/** The 1-based number of the optimizer update of the slot's step. */
export function updateOf(slot: BoardSlot): number {
  return slot.words[S.UPDATE];
}

export function lrOf(slot: BoardSlot): number {
  return slot.f64[SF_LR];
}

export function lossOf(slot: BoardSlot): number {
  return slot.f64[SF_LOSS];
}

export function setLoss(slot: BoardSlot, loss: number): void {
  slot.f64[SF_LOSS] = loss;
}

/** Thread i's slice [from, to) of a gradient vector of gradLen floats among n threads (cut at multiples of 16 floats: cache lines, SIMD). */
export function sliceOf(gradLen: number, lanes: number, i: number): [number, number] {
  const at = (j: number) => (j === lanes ? gradLen : Math.min(gradLen, Math.floor((j * gradLen) / lanes / 16) * 16));
  return [at(i), at(i + 1)];
}
