// The one interface every layer implements (ConvNetJS-style: small, flat).
//
// Shapes: `inShape` / `outShape` are per sample (no batch axis). Buffers
// are row-major Float32Arrays holding `batch` samples back to back.
//
// Memory: a layer owns its output and input-gradient buffers, allocated once
// per capacity and reused (no allocation in the hot loop); a buffer returned
// by forward/backward stays valid until that layer's next forward/backward.
//
// Parameters live in the model's one flat Float32Array (docs/design.md principle
// 2): bind() hands each layer subarray views, `p[i]` and `g[i]` for
// `params[i]`. Backward ACCUMULATES into g (+=); zeroing is the caller's job
// (an LSTM reuses its weights at every timestep and relies on it).
//
// Returned buffers are read-only to the caller, and may be the layer's own
// input (identity layers: flatten, reshape, dropout in eval mode).
//
// Statistics buffers (BatchNorm's running mean and variance) are not
// trained. In training mode a layer adds `n * statistic` for its micro-shard,
// n = the number of SAMPLES (not rows: a [T, F] input has batch*T rows),
// into `ds[j]` (the accumulator beside `s[j]` in the gradient vector); after
// the fixed-order reduction the trainer applies
//   s = (1 - momentum) * s + momentum * (reduced ds / N)
// so the update does not depend on how the batch was split among workers.

import { dptError, fmtShape } from '../errors.js';
import { allocator, type FloatAllocator } from '../tensor/alloc.js';

const EMPTY: Float32Array = new Float32Array(0);

export type InitKind =
  | 'glorot_uniform' | 'glorot_normal' | 'he_uniform' | 'he_normal'
  | 'zeros' | 'ones';

export interface ParamSpec {
  /** Name within the layer, e.g. 'W', 'b', 'W_ih'. */
  readonly name: string;
  /** Shape as stored in the flat buffer (row-major). */
  readonly shape: readonly number[];
  readonly init: InitKind;
  /** Fan-in / fan-out for the Glorot and He initializers. */
  readonly fanIn: number;
  readonly fanOut: number;
  /** Whether L1/L2 regularization and weight decay apply (weights yes, biases no). */
  readonly decay: boolean;
}

export interface StatSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly init: 'zeros' | 'ones';
  /** Weight of the new batch statistic (PyTorch convention, 0.1 by default). */
  readonly momentum: number;
}

export interface ForwardContext {
  /** Training mode (dropout active, batch statistics) or evaluation mode. */
  readonly training: boolean;
  /** Run seed, step number: keys of the counter-based dropout masks. */
  readonly seed: number;
  readonly step: number;
  /** Position of this buffer's row 0 within the global batch (dropout key). */
  readonly rowOffset: number;
}

export interface Layer {
  /** The spec's type name ('dense', 'lstm', ...). */
  readonly type: string;
  /** Position in the model, part of the randomness key. */
  readonly index: number;
  readonly inShape: readonly number[];
  readonly outShape: readonly number[];
  readonly params: readonly ParamSpec[];
  readonly stats: readonly StatSpec[];
  bind(p: Float32Array[], g: Float32Array[], s: Float32Array[], ds: Float32Array[]): void;
  forward(x: Float32Array, batch: number, ctx: ForwardContext): Float32Array;
  /** Returns dL/dx, or null when needDx is false (the first layer skips it). */
  backward(dy: Float32Array, batch: number, needDx: boolean): Float32Array | null;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Checks that bind() got one view of the right length per parameter. */
export function checkBind(where: string, params: readonly ParamSpec[], p: Float32Array[], g: Float32Array[]): void {
  for (let i = 0; i < params.length; i++) {
    const n = sizeOf(params[i].shape);
    if (p[i]?.length !== n || g[i]?.length !== n) {
      throw dptError('DPT_ERR_SHAPE',
        `${where}: parameter ${params[i].name} needs ${n} floats ${fmtShape(params[i].shape)}, got p ${p[i]?.length}, g ${g[i]?.length}`);
    }
  }
}

/** Checks that forward() got at least `floats` values for `batch` samples of inShape. */
export function checkForwardInput(where: string, x: Float32Array, floats: number, batch: number, inShape: readonly number[]): void {
  if (x.length < floats) {
    throw dptError('DPT_ERR_SHAPE', `${where}: forward needs ${floats} floats (batch ${batch} of ${fmtShape(inShape)}), got ${x.length}`);
  }
}

let collecting: Workspace[] | null = null;

/** Runs `build` and returns what it built with every Workspace constructed meanwhile (a model's layers'). */
export function collectWorkspaces<T>(build: () => T): { built: T; workspaces: Workspace[] } {
  const outer = collecting;
  const workspaces: Workspace[] = [];
  collecting = workspaces;
  try {
    return { built: build(), workspaces };
  } finally {
    collecting = outer;
  }
}

/**
 * A reusable buffer that grows to the largest batch seen and hands out
 * views of the exact size asked for.
 *
 * Its memory comes from the allocator in effect (src/tensor/alloc.ts): the
 * heap by default, the WebAssembly memory when the wasm kernels are active,
 * so that every layer's outputs, caches and gradients are where the kernels
 * use them in place. Growing frees the old buffer (the wasm memory never
 * grows and reuses freed blocks), so a workspace holds at most its largest
 * size; it shrinks only when released (the model's releaseBuffers: an
 * evaluation batch that did not fit). A view stays valid until the next
 * get() (the layer's next forward/backward). After the allocator changes
 * (useKernels), the next get() moves to the new one.
 */
export class Workspace {
  private buf = EMPTY;
  private view = EMPTY;
  private owner: FloatAllocator | null = null;
  constructor() {
    collecting?.push(this);
  }
  /** Gives the buffer back to its allocator (the next get() allocates anew). */
  release(): void {
    if (this.owner !== null) this.owner.free(this.buf);
    this.buf = EMPTY;
    this.view = EMPTY;
    this.owner = null;
  }
  /** A view of `n` floats; contents are unspecified unless `zero`. */
  get(n: number, zero = false): Float32Array {
    const a = allocator();
    if (this.buf.length < n || this.owner !== a) {
      if (this.owner !== null) this.owner.free(this.buf);
      this.buf = EMPTY; // if alloc throws (out of memory), nothing dangles
      this.view = EMPTY;
      this.owner = null;
      this.buf = a.alloc(n);
      this.owner = a;
      this.view = this.buf;
    }
    if (this.view.length !== n) this.view = this.buf.subarray(0, n);
    if (zero) this.view.fill(0);
    return this.view;
  }
}
