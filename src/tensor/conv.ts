// Which convolution and pooling kernels the layers call (the interface and
// its exactness contract: conv-kernels.ts): the TypeScript reference by
// default, the WebAssembly SIMD ones after useKernels() (setup.ts).
import type { ConvKernels } from './conv-kernels.js';
import { tsConvKernels } from './conv-ts.js';

export type { ConvKernels } from './conv-kernels.js';

let active: ConvKernels = tsConvKernels;

/** The convolution and pooling kernels the layers call. */
export function convKernels(): ConvKernels {
  return active;
}

/** Swap the implementation (null: back to the reference). */
export function setConvKernels(k: ConvKernels | null): void {
  active = k ?? tsConvKernels;
}
