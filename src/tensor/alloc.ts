// Where the core's float buffers live: one process-wide (per isolate)
// allocator hook, so that the layers' workspaces and caches and the model's
// flat parameters and gradients can be placed where the active kernels use
// them without a copy per call (WebAssembly memory for the wasm kernels).
//
// The default is the plain heap (new Float32Array): the pure-TypeScript
// kernels use any Float32Array in place. useKernels() (src/tensor/setup.ts)
// swaps in the WebAssembly kernels' allocator together with the kernels.
//
// Who allocates through it: Workspace (src/nn/layer.ts: every layer's
// outputs, input gradients and forward caches, the recurrent layers' state
// and scratch, the loss gradient), buildModel's default params and grads
// (src/model/model.ts), and any caller's batch buffers (allocFloats).
//
// Bounded memory: an allocator that does not grow (the wasm one) must be
// able to take buffers back, so Workspace frees its old buffer when a larger
// batch makes it reallocate; the memory in use is then the sum of the
// workspaces' largest sizes, not the history of every size seen.

export interface FloatAllocator {
  readonly name: string;
  /** A zero-filled Float32Array of n floats. */
  alloc(n: number): Float32Array;
  /** Gives back a buffer that alloc() returned (the very view, not a subarray). */
  free(arr: Float32Array): void;
  /** Whether the kernels that go with this allocator use arr in place (no copy per call). */
  owns(arr: Float32Array): boolean;
}

/** The default: ordinary heap buffers, garbage-collected; everything is usable in place. */
export const heapAllocator: FloatAllocator = {
  name: 'heap',
  alloc: (n) => new Float32Array(n),
  free: () => {},
  owns: () => true,
};

let current: FloatAllocator = heapAllocator;

/** The allocator in effect. */
export function allocator(): FloatAllocator {
  return current;
}

/**
 * Swap the allocator (null: back to the heap). Buffers allocated before stay
 * valid; each Workspace moves to the new allocator at its next get().
 */
export function setAllocator(a: FloatAllocator | null): void {
  current = a ?? heapAllocator;
}

/** n zero-filled floats from the allocator in effect (e.g. a batch buffer the kernels read in place). */
export function allocFloats(n: number): Float32Array {
  return current.alloc(n);
}
