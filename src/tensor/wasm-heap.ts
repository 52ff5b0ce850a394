// The WebAssembly memory as the kernels' heap: one memory created at its
// full size and never grown (wasm-kernels.ts says why), with
//   - alloc()/free(): Float32Array views into it, 64-byte aligned, first-fit
//     reuse of freed blocks, coalesced, so memory in use stays the sum of
//     the live buffers; running out is DPT_ERR_MEMORY naming memoryBytes;
//   - operand placement for one kernel call: an operand that is a view into
//     the memory is used in place; any other is copied in above `top` (and,
//     if the call writes it, copied back by flush()), and release(mark)
//     gives that space back.
// No garbage per call: the wrappers check lengths themselves and build an
// error message only on failure (tooShort), place operands into `ptrs`
// (reused), and release in a finally; a closure or a template string per
// call was most of what a training step allocated.
import { dptError } from '../errors.js';

const ALIGN = 64; // cache line; the kernels only need 4 (floats) or 16 (vectors)

export const isDim = (x: number): boolean => Number.isInteger(x) && x >= 0 && x < 2 ** 31;
export const isPos = (x: number): boolean => Number.isInteger(x) && x >= 1 && x < 2 ** 31;

/** An operand shorter than its shape needs: DPT_ERR_SHAPE. Call it only once the check failed. */
export function tooShort(arr: Float32Array, len: number, what: string, shape: string): never {
  throw dptError('DPT_ERR_SHAPE', `${what} has ${arr.length} floats, needs ${len} for ${shape}`);
}

const roundUp = (x: number): number => Math.ceil(x / ALIGN) * ALIGN;

export class WasmHeap {
  readonly buffer: ArrayBuffer;
  private readonly limit: number;
  /**
   * [heapBase, top) holds the workspace and the alloc() buffers; free blocks
   * inside it are kept in `holes` (sorted by address, never adjacent:
   * freeing coalesces) and reused first-fit. Above `top`, a call copies
   * operands that live outside the memory, for that call only.
   */
  top: number;
  private readonly live = new Map<number, number>(); // byte offset -> bytes, of every live alloc() buffer
  private readonly holes: { start: number; end: number }[] = [];
  private inUse = 0;
  private readonly copyBack: { arr: Float32Array; ptr: number; len: number }[] = [];
  /** Operand pointers of the call being placed (see operand()), reused from call to call. */
  readonly ptrs: number[] = [0, 0, 0, 0, 0, 0, 0, 0];

  constructor(buffer: ArrayBuffer, heapBase: number) {
    this.buffer = buffer;
    this.limit = buffer.byteLength;
    this.top = roundUp(heapBase);
  }

  private outOfMemory(bytes: number, what: string): never {
    let largest = this.limit - this.top;
    let holeBytes = 0;
    for (const h of this.holes) { largest = Math.max(largest, h.end - h.start); holeBytes += h.end - h.start; }
    throw dptError('DPT_ERR_MEMORY',
      `wasm kernels: out of WebAssembly memory allocating ${bytes} bytes for ${what} ` +
      `(${this.limit - this.top + holeBytes} of ${this.limit} free, largest block ${largest}); raise options.memoryBytes`);
  }

  /** Bump allocation above top; `what` names the caller in the out-of-memory message. */
  bump(bytes: number, what: string): number {
    const ptr = this.top;
    const end = roundUp(ptr + bytes);
    if (end > this.limit) this.outOfMemory(bytes, what);
    this.top = end;
    return ptr;
  }

  owns(arr: Float32Array): boolean {
    return arr.buffer === this.buffer;
  }

  alloc(n: number): Float32Array {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw dptError('DPT_ERR_CONFIG', `wasm kernels: alloc(n) needs a non-negative integer n, got ${String(n)}`);
    }
    if (n === 0) return new Float32Array(this.buffer, 0, 0); // holds nothing; free() ignores it
    const size = roundUp(n * 4);
    const holes = this.holes;
    let ptr = -1;
    for (let i = 0; i < holes.length; i++) {
      const h = holes[i];
      if (h.end - h.start >= size) {
        ptr = h.start;
        h.start += size;
        if (h.start === h.end) holes.splice(i, 1);
        break;
      }
    }
    if (ptr < 0) ptr = this.bump(size, `alloc(${n})`);
    this.live.set(ptr, size);
    this.inUse += size;
    const view = new Float32Array(this.buffer, ptr, n);
    view.fill(0); // a reused block, or memory above `top` that held an earlier call's copies
    return view;
  }

  free(arr: Float32Array): void {
    if (arr.length === 0) return;
    const ptr = arr.byteOffset;
    const size = this.live.get(ptr);
    if (!this.owns(arr) || size === undefined || roundUp(arr.byteLength) !== size) {
      throw new RangeError('wasm kernels: free() takes a buffer returned by alloc() (the same view, not a subarray), once');
    }
    this.live.delete(ptr);
    this.inUse -= size;
    const holes = this.holes;
    let start = ptr, end = ptr + size;
    // Insert in address order, merging with the neighbours.
    let i = 0;
    while (i < holes.length && holes[i].end < start) i++;
    if (i < holes.length && holes[i].end === start) { start = holes[i].start; holes.splice(i, 1); }
    if (i < holes.length && holes[i].start === end) { end = holes[i].end; holes.splice(i, 1); }
    if (end === this.top) this.top = start; // the block is the last one: give it back to the bump region
    else holes.splice(i, 0, { start, end });
  }

  bytesFree(): number {
    let n = this.limit - this.top;
    for (const h of this.holes) n += h.end - h.start;
    return n;
  }

  bytesInUse(): number {
    return this.inUse;
  }

  /**
   * Pointer to arr's first `len` floats in the memory. An operand outside the
   * memory is copied into scratch above `top` (and, if the call writes it,
   * copied back by flush()). One call: `const mark = heap.top`, place the
   * operands and run the kernel, flush(), and in a finally release(mark).
   */
  place(arr: Float32Array, len: number, copyIn: boolean, written: boolean, what: string): number {
    if (this.owns(arr)) return arr.byteOffset;
    const ptr = this.bump(len * 4, `a copy of ${what}`);
    if (copyIn) new Float32Array(this.buffer, ptr, len).set(arr.subarray(0, len));
    if (written) this.copyBack.push({ arr, ptr, len });
    return ptr;
  }

  /** Copies the written operands that live outside the memory back out. */
  flush(): void {
    for (const { arr, ptr, len } of this.copyBack) arr.set(new Float32Array(this.buffer, ptr, len));
    this.copyBack.length = 0;
  }

  /** Gives the call's copies' space back. */
  release(mark: number): void {
    this.copyBack.length = 0;
    this.top = mark;
  }
}
