// `--workers N`: the gradient engine over N Piscina worker threads.
//
// Memory (DESIGN.md principle 2 and "Never detach an ArrayBuffer"):
//   - the training set is copied ONCE onto SharedArrayBuffers (toShared) and
//     every thread reads it in place;
//   - the coordinator's model is built over a SharedArrayBuffer (the master
//     weights); threads build their models over the same memory. The
//     coordinator alone writes it, between steps; each batchGradient call
//     publishes the new weights by bumping the version word (the broadcast is
//     one Atomics.add, no copy per thread);
//   - each task writes its partial sums into a result region, a
//     SharedArrayBuffer lent to that one task until it settles (RegionPool),
//     so a late or failed task can never scribble over an accepted answer.
// Nothing is transferred, so no isolate ever detaches a buffer.
//
// One step (the loop asks for one batch's reduced gradient):
//   1. bump the weights version; cut the K micro-shards into one contiguous
//      range per slot (scheduler.ts: splitRanges);
//   2. dispatch one task per range (StepTask: indices, range, region);
//   3. per reply: validate (zod, task id, version, the exact aligned blocks
//      of the range, their sample counts); a bad reply, a throw or a thread
//      exit fails the attempt and the range is dispatched again (Piscina
//      replaces an exited thread); the stall inspector reassigns ranges
//      whose attempt is older than stepTimeoutMs and ignores late answers;
//   4. when every range has an accepted answer, combine the blocks in the
//      fixed tree order (combineBlocks) into the root sum.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { isShared, toShared, type Dataset } from '../src/data/dataset.js';
import { dptError, type ErrorCode } from '../src/errors.js';
import { formatZodError } from '../src/check/zod-format.js';
import type { Model } from '../src/model/model.js';
import { alignedBlocks, combineBlocks, nodeKey, type TreeNode } from '../src/reduce/tree.js';
import { shardBounds, shardCount } from '../src/train/batch.js';
import { activeKernelKind } from '../src/tensor/setup.js';
import { gradLength } from '../src/train/step.js';
import { kernelsModule } from '../worker/kernels-setup.js';
import {
  CONTROL_LENGTH, CONTROL_VERSION, ReadyReply, TaskReply, THREAD_PROTOCOL_VERSION,
  type StepTask, type ThreadSetup, type WarmupTask,
} from '../worker/thread-protocol.js';
import { faultFor, type Fault } from './chaos.js';
import type { BatchJob, EngineStats, GradientEngine } from './engine.js';
import { describeStall, shardLabel, splitRanges, StepRound, type RangeState } from './scheduler.js';

export interface ThreadEngineOptions {
  /** The coordinator's model; its params must be a whole SharedArrayBuffer (see sharedParams). */
  model: Model;
  loss: string;
  seed: number;
  /** Key of (model, loss, seed): threads cache their model by it. */
  session: string;
  train: Dataset;
  /** Largest global batch, in rows. */
  maxBatch: number;
  workers: number;
  /** Reassign a range whose attempt is older than this (0: never). */
  stepTimeoutMs: number;
  chaos?: readonly Fault[];
  /** Attempts per range and step before the step fails. Default 4. */
  maxAttempts?: number;
  /** Without a step timeout, warn about missing workers this often. Default 60000. */
  stallWarnMs?: number;
  /** Fault, stall and late-answer notes (one line each). */
  log?: (line: string) => void;
}

/** A zeroed float32 buffer of n floats on a SharedArrayBuffer: what the coordinator's model is built over. */
export function sharedParams(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

/** The dataset with x and y each filling a whole SharedArrayBuffer: as is if it already does, else copied once. */
export function wholeShared(ds: Dataset): Dataset {
  const whole = (a: Float32Array) => isShared(a) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
  return whole(ds.x) && whole(ds.y) ? ds : toShared(ds);
}

/** dist/worker/thread-worker.js, from dist/coordinator (the CLI) or coordinator/ (tests run the TS sources). */
export function threadWorkerFile(): string {
  const candidates = [
    new URL('../worker/thread-worker.js', import.meta.url),
    new URL('../dist/worker/thread-worker.js', import.meta.url),
  ];
  for (const url of candidates) {
    const path = fileURLToPath(url);
    if (existsSync(path)) return path;
  }
  throw new Error('dist/worker/thread-worker.js not found: run `npm run build`');
}

// NOTE: DPT_ERR_WORKER belongs in src/errors.ts's catalog (listed in the README).
const WORKER_ERROR = 'DPT_ERR_WORKER' as unknown as ErrorCode;

interface Region {
  readonly buffer: SharedArrayBuffer;
  readonly floats: Float32Array;
  readonly blocks: number;
}

/** Result regions lent to one task at a time, sized in blocks of one gradient vector each. */
class RegionPool {
  private readonly free: Region[] = [];
  constructor(private readonly blockFloats: number) {}
  acquire(blocks: number): Region {
    const i = this.free.findIndex((r) => r.blocks >= blocks);
    if (i >= 0) return this.free.splice(i, 1)[0];
    const buffer = new SharedArrayBuffer(blocks * this.blockFloats * 4);
    return { buffer, floats: new Float32Array(buffer), blocks };
  }
  release(region: Region): void {
    this.free.push(region);
  }
}

interface Accepted {
  region: Region;
  blocks: TreeNode[];
}

/** One step in flight. */
interface StepContext {
  /** 1-based step (messages, chaos). */
  readonly step: number;
  readonly job: BatchJob;
  readonly k: number;
  readonly rows: number;
  readonly version: number;
  readonly indices: Uint32Array<ArrayBuffer>;
  readonly round: StepRound<Accepted>;
  readonly out: Float32Array;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout | null;
}

export class ThreadEngine implements GradientEngine {
  readonly workers: number;
  private readonly pool: Piscina;
  private readonly control: Int32Array;
  private readonly regions: RegionPool;
  private readonly gradLen: number;
  private readonly chaos: readonly Fault[];
  private readonly maxAttempts: number;
  private readonly stallWarnMs: number;
  private readonly log: (line: string) => void;
  private nextTaskId = 0;
  private closed = false;
  /** Per-level buffers of the final combination, reused from step to step. */
  private readonly combineScratch: Float32Array[] = [];
  private readonly timing: EngineStats = { steps: 0, dispatchMs: 0, combineMs: 0, waitMs: 0, workerMs: 0 };

  constructor(private readonly opts: ThreadEngineOptions) {
    const { model, workers } = opts;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`ThreadEngine needs workers >= 1, got ${workers}`);
    const params = model.params;
    if (!(params.buffer instanceof SharedArrayBuffer) || params.byteOffset !== 0) {
      throw new RangeError('ThreadEngine: the model must be built over a SharedArrayBuffer (buildModel(spec, { params: sharedParams(n) }))');
    }
    this.workers = workers;
    this.gradLen = gradLength(model);
    this.chaos = opts.chaos ?? [];
    const badIndex = this.chaos.find((f) => f.kind === 'corrupt' && (f.index ?? 0) >= this.gradLen);
    if (badIndex !== undefined) throw dptError('DPT_ERR_USAGE', `--chaos: corrupt index=${badIndex.index} is past the gradient vector (${this.gradLen} floats)`);
    this.maxAttempts = opts.maxAttempts ?? 4;
    this.stallWarnMs = opts.stallWarnMs ?? 60_000;
    this.log = opts.log ?? (() => {});
    this.regions = new RegionPool(this.gradLen);
    const controlBuffer = new SharedArrayBuffer(CONTROL_LENGTH * 4);
    this.control = new Int32Array(controlBuffer);
    const shared = wholeShared(opts.train);
    const xSize = shared.x.length / shared.n;
    const ySize = shared.y.length / shared.n;
    const setup: ThreadSetup = {
      protocol: THREAD_PROTOCOL_VERSION, session: opts.session, model: model.spec, loss: opts.loss as ThreadSetup['loss'],
      seed: opts.seed, maxBatch: opts.maxBatch,
      train: { x: shared.x.buffer as SharedArrayBuffer, y: shared.y.buffer as SharedArrayBuffer, n: shared.n, xSize, ySize },
      params: params.buffer, control: controlBuffer,
      kernels: activeKernelKind() === 'wasm' ? { kind: 'wasm', module: kernelsModule() } : { kind: 'ts' },
    };
    this.pool = new Piscina({
      filename: threadWorkerFile(),
      minThreads: workers, maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: 2 ** 31 - 1,
      workerData: setup,
      recordTiming: false,
    });
    // A thread dying outside a task must not take the coordinator down: Piscina replaces it.
    this.pool.on('error', (err: Error) => this.log(`worker thread error: ${err.message}; the pool replaces the thread`));
  }

  /**
   * Starts every thread and builds its model before the first step (one
   * warm-up task per thread, held at a barrier until all have arrived), so
   * thread start-up never counts against the step timeout.
   */
  async ready(timeoutMs = 60_000): Promise<void> {
    const barrier = new SharedArrayBuffer(4);
    const task: WarmupTask = {
      type: 'warmup', protocol: THREAD_PROTOCOL_VERSION, session: this.opts.session,
      barrier, threads: this.workers, timeoutMs,
    };
    let replies: unknown[];
    try {
      replies = await Promise.all(Array.from({ length: this.workers }, () => this.pool.run(task)));
    } catch (err) {
      throw dptError(WORKER_ERROR, `worker threads did not start: ${(err as Error).message}`);
    }
    for (const raw of replies) {
      const parsed = ReadyReply.safeParse(raw);
      if (!parsed.success) throw dptError(WORKER_ERROR, `worker threads did not start: malformed ready reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`);
      if (!parsed.data.complete) this.log(`worker threads: only ${Atomics.load(new Int32Array(barrier), 0)} of ${this.workers} started within ${timeoutMs} ms; continuing`);
    }
  }

  stats(): EngineStats {
    return { ...this.timing };
  }

  batchGradient(job: BatchJob, out: Float32Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error('ThreadEngine: closed'));
    const t0 = performance.now();
    // The weights written since the last step are published with the version.
    const version = Atomics.add(this.control, CONTROL_VERSION, 1) + 1;
    const rows = job.indices.length;
    const k = shardCount(rows, job.microShards);
    const ranges = splitRanges(k, new Array<number>(this.workers).fill(1));
    let tDispatched = t0;
    return new Promise<void>((resolve, reject) => {
      const ctx: StepContext = {
        step: job.step + 1, job, k, rows, version,
        // A copy of just this batch (a view would clone the whole permutation into every task).
        indices: Uint32Array.from(job.indices),
        round: new StepRound<Accepted>(job.step + 1, ranges, this.maxAttempts),
        out, settled: false, timer: null,
        resolve: () => { this.timing.waitMs += performance.now() - tDispatched; resolve(); },
        reject,
      };
      for (let i = 0; i < ranges.length; i++) this.dispatch(ctx, i);
      this.arm(ctx);
      tDispatched = performance.now();
      this.timing.dispatchMs += tDispatched - t0;
    });
  }

  private dispatch(ctx: StepContext, i: number): void {
    const state = ctx.round.ranges[i];
    const { slot, start, end } = state.range;
    const blocks = alignedBlocks(ctx.k, start, end);
    const region = this.regions.acquire(blocks.length);
    const taskId = this.nextTaskId++;
    const attempt = ctx.round.begin(i, taskId, performance.now());
    const fault = attempt.attempt === 0 ? faultFor(this.chaos, ctx.step, slot) : undefined;
    const task: StepTask = {
      type: 'step', protocol: THREAD_PROTOCOL_VERSION, session: this.opts.session,
      taskId, slot, attempt: attempt.attempt, version: ctx.version, step: ctx.job.step,
      k: ctx.k, start, end, indices: ctx.indices, region: region.buffer,
    };
    if (fault !== undefined) {
      task.fault = { kind: fault.kind };
      if (fault.ms !== undefined) task.fault.ms = fault.ms;
      if (fault.index !== undefined) task.fault.index = fault.index;
    }
    this.pool.run(task).then(
      (reply: unknown) => this.onReply(ctx, taskId, region, blocks, reply),
      (err: unknown) => this.onFailure(ctx, taskId, region, err instanceof Error ? err.message : String(err)),
    );
  }

  private onReply(ctx: StepContext, taskId: number, region: Region, blocks: TreeNode[], raw: unknown): void {
    const state = ctx.settled ? null : ctx.round.currentRange(taskId);
    if (state === null) {
      // Late: the range was reassigned (or the step is over). Its region is free again.
      this.regions.release(region);
      if (!this.closed) this.noteLate(ctx, taskId);
      return;
    }
    const problem = this.checkReply(ctx, taskId, region, blocks, raw);
    if (problem !== null) {
      this.onFailure(ctx, taskId, region, problem);
      return;
    }
    this.timing.workerMs! += (raw as { computeMs: number }).computeMs;
    ctx.round.accept(taskId, { region, blocks });
    if (ctx.round.isComplete()) this.finish(ctx);
  }

  /** Why a reply cannot be used, or null. */
  private checkReply(ctx: StepContext, taskId: number, region: Region, blocks: TreeNode[], raw: unknown): string | null {
    const parsed = TaskReply.safeParse(raw);
    if (!parsed.success) return `malformed reply: ${formatZodError(parsed.error).replace(/\n/g, '; ')}`;
    const reply = parsed.data;
    if (reply.taskId !== taskId) return `reply names task ${reply.taskId}, expected ${taskId}`;
    if (reply.type === 'stale') return `answered stale (weights version ${reply.version}, task ${ctx.version})`;
    if (reply.version !== ctx.version) return `reply for weights version ${reply.version}, expected ${ctx.version}`;
    if (reply.blocks.length !== blocks.length || reply.blocks.some((b, i) => b.level !== blocks[i].level || b.index !== blocks[i].index)) {
      return `reply lists blocks ${JSON.stringify(reply.blocks)}, expected the aligned blocks of the range`;
    }
    const size = this.gradLen - 2;
    for (let b = 0; b < blocks.length; b++) {
      const rowsCovered = shardBounds(ctx.rows, ctx.k, blocks[b].end - 1)[1] - shardBounds(ctx.rows, ctx.k, blocks[b].start)[0];
      const count = region.floats[b * this.gradLen + size + 1];
      if (count !== rowsCovered) return `block ${b} counts ${count} samples, its micro-shards hold ${rowsCovered}`;
    }
    return null;
  }

  private onFailure(ctx: StepContext, taskId: number, region: Region, reason: string): void {
    // The task has settled (or its answer was refused): nothing writes into the region any more.
    this.regions.release(region);
    if (ctx.settled) return;
    const state = ctx.round.currentRange(taskId);
    const outcome = ctx.round.fail(taskId, reason);
    if (outcome === 'late' || state === null) return;
    if (outcome === 'exhausted') {
      this.fail(ctx, this.exhaustedError(ctx, state));
      return;
    }
    this.log(`step ${ctx.step}: worker ${state.range.slot} (micro-shards ${shardLabel(state.range)}) failed: ${reason}; reassigning (attempt ${state.attempts + 1} of ${this.maxAttempts})`);
    this.dispatch(ctx, ctx.round.ranges.indexOf(state));
    this.arm(ctx);
  }

  private noteLate(ctx: StepContext, taskId: number): void {
    const state = ctx.round.rangeOfTask(taskId);
    if (state !== null) this.log(`step ${ctx.step}: ignored a late answer from worker ${state.range.slot} (micro-shards ${shardLabel(state.range)}, task ${taskId})`);
  }

  private exhaustedError(ctx: StepContext, state: RangeState<Accepted>): Error {
    return dptError(WORKER_ERROR, `step ${ctx.step}: micro-shards ${shardLabel(state.range)} failed ${state.attempts} times ` +
      `(${state.failures.join('; ')}); giving up` + (this.opts.stepTimeoutMs > 0 ? ` (if the steps are just slow, raise --step-timeout-ms, now ${this.opts.stepTimeoutMs})` : ''));
  }

  /**
   * The stall inspector: a timer for the oldest open attempt's deadline.
   * Without a step timeout it only warns, every stallWarnMs, naming the
   * missing workers (Horovod's stall inspector does the same).
   */
  private arm(ctx: StepContext): void {
    if (ctx.settled) return;
    if (ctx.timer !== null) clearTimeout(ctx.timer);
    ctx.timer = null;
    const timeout = this.opts.stepTimeoutMs;
    if (timeout <= 0) {
      ctx.timer = setTimeout(() => this.inspect(ctx), this.stallWarnMs);
      return;
    }
    const deadline = ctx.round.nextDeadline(timeout);
    if (deadline === Infinity) return;
    ctx.timer = setTimeout(() => this.inspect(ctx), Math.max(0, deadline - performance.now()));
  }

  private inspect(ctx: StepContext): void {
    ctx.timer = null;
    if (ctx.settled) return;
    const timeout = this.opts.stepTimeoutMs;
    if (timeout <= 0) {
      const missing = ctx.round.missing();
      const waited = performance.now() - Math.min(...missing.map((r) => r.current?.startedAt ?? Infinity));
      this.log(describeStall(ctx.step, missing, waited, ctx.round.ranges.length, 'still waiting (no step timeout, so not reassigning)'));
      this.arm(ctx);
      return;
    }
    const overdue = ctx.round.overdue(performance.now(), timeout);
    if (overdue.length > 0) {
      const exhausted = overdue.find((r) => r.attempts >= this.maxAttempts);
      if (exhausted !== undefined) {
        exhausted.failures.push(`no answer within ${timeout} ms`);
        this.log(describeStall(ctx.step, overdue, timeout, ctx.round.ranges.length, 'giving up'));
        this.fail(ctx, this.exhaustedError(ctx, exhausted));
        return;
      }
      this.log(describeStall(ctx.step, overdue, timeout, ctx.round.ranges.length, 'reassigning their micro-shards (a late answer will be ignored)'));
      for (const r of overdue) {
        r.failures.push(`no answer within ${timeout} ms`);
        this.dispatch(ctx, ctx.round.ranges.indexOf(r));
      }
    }
    this.arm(ctx);
  }

  private finish(ctx: StepContext): void {
    const t0 = performance.now();
    const sums = new Map<string, Float32Array>();
    for (const r of ctx.round.ranges) {
      const { region, blocks } = r.result!;
      blocks.forEach((node, b) => sums.set(nodeKey(node.level, node.index), region.floats.subarray(b * this.gradLen, (b + 1) * this.gradLen)));
    }
    combineBlocks(ctx.k, sums, ctx.out, this.combineScratch);
    this.settle(ctx);
    this.timing.steps++;
    this.timing.combineMs += performance.now() - t0;
    ctx.resolve();
  }

  private fail(ctx: StepContext, err: Error): void {
    this.settle(ctx);
    ctx.reject(err);
  }

  private settle(ctx: StepContext): void {
    ctx.settled = true;
    if (ctx.timer !== null) clearTimeout(ctx.timer);
    ctx.timer = null;
    for (const r of ctx.round.ranges) if (r.result !== null) this.regions.release(r.result.region);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }
}

/** A thread engine whose threads are up and hold the model. */
export async function createThreadEngine(opts: ThreadEngineOptions): Promise<ThreadEngine> {
  const engine = new ThreadEngine(opts);
  try {
    await engine.ready();
  } catch (err) {
    await engine.close();
    throw err;
  }
  return engine;
}
