// What worker threads read in place: the master weights and the training
// set on SharedArrayBuffers (DESIGN "Never detach an ArrayBuffer": nothing
// is ever transferred), and when a thread copies the set into its own memory.
import { isShared, toShared, type Dataset } from '../../src/data/dataset.js';

/** A zeroed float32 buffer of n floats filling a SharedArrayBuffer: what a model is built over for threads to read. */
export function sharedParams(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(n * 4));
}

/** The dataset with x and y each filling a whole SharedArrayBuffer: as is if it already does, else copied once. */
export function wholeShared(ds: Dataset): Dataset {
  return fillsShared(ds.x) && fillsShared(ds.y) ? ds : toShared(ds);
}

/** Whether the array is a whole SharedArrayBuffer (threads can then be handed the buffer itself). */
export function fillsShared(a: Float32Array): boolean {
  return isShared(a) && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength;
}

/**
 * The threads each copy the training set into their own memory when all
 * the copies together take at most this much: rows gathered out of a
 * SharedArrayBuffer go through V8's relaxed-atomic copy, word by word,
 * which cost 3% of a thread's compute on the MNIST MLP (two threads, 128
 * rows each: 1.41 against 1.37 ms). Larger sets stay shared: memory first.
 */
export const OWN_COPY_BYTES = 512 * 1024 * 1024;
