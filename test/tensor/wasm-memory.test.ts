// Where buffers live with the wasm kernels: the allocator (alloc / free,
// reuse and coalescing of freed blocks, never growing the memory), Workspace
// growth that stays bounded, the allocator hook that buildModel and the
// layers use, and switching back to the heap.
import { afterEach, describe, expect, it } from 'vitest';
import { buildModel } from '../../src/model/model.js';
import { Workspace } from '../../src/nn/layer.js';
import { allocator, allocFloats, heapAllocator } from '../../src/tensor/alloc.js';
import { activeKernelKind, useKernels } from '../../src/tensor/setup.js';
import { newKernels } from './wasm-helpers.js';

afterEach(() => useKernels(null));

describe('wasm allocator', () => {
  it('reuses freed blocks, merges neighbours, and gives the tail back', () => {
    const wk = newKernels(8 * 1024 * 1024);
    const free0 = wk.bytesFree();
    const a = wk.alloc(100), b = wk.alloc(1000), c = wk.alloc(10);
    expect(wk.bytesInUse()).toBe(448 + 4032 + 64);
    wk.free(b);
    const d = wk.alloc(500); // first fit: inside b's block
    expect(d.byteOffset).toBe(b.byteOffset);
    wk.free(a);
    wk.free(d);
    const e = wk.alloc(100 + 1000); // a and the rest of b merged (and d's part)
    expect(e.byteOffset).toBe(a.byteOffset);
    expect(Array.from(e).every((v) => v === 0)).toBe(true); // zero-filled although reused
    wk.free(e);
    wk.free(c);
    expect(wk.bytesFree()).toBe(free0);
    expect(wk.bytesInUse()).toBe(0);
  });

  it('refuses to free a subarray, a foreign array, or twice', () => {
    const wk = newKernels(8 * 1024 * 1024);
    const a = wk.alloc(64);
    expect(() => wk.free(a.subarray(16))).toThrow(RangeError);
    expect(() => wk.free(new Float32Array(64))).toThrow(RangeError);
    wk.free(a);
    expect(() => wk.free(a)).toThrow(RangeError);
    wk.free(wk.alloc(0)); // empty views hold nothing
  });

  it('a workspace that grows and shrinks many times holds only its largest size', () => {
    const wk = newKernels(16 * 1024 * 1024);
    useKernels(wk);
    const spaces = [new Workspace(), new Workspace(), new Workspace()];
    const free0 = wk.bytesFree();
    let largest = 0;
    for (let round = 0; round < 50; round++) {
      for (let s = 0; s < spaces.length; s++) {
        const n = 1000 + ((round * 7919 + s * 104729) % 20000);
        largest = Math.max(largest, n);
        const v = spaces[s].get(n);
        expect(v.length).toBe(n);
        expect(wk.owns(v)).toBe(true);
      }
    }
    // Three live buffers of at most `largest` floats each, plus fragmentation of less than as much again.
    expect(wk.bytesInUse()).toBeLessThanOrEqual(3 * (largest * 4 + 64));
    expect(free0 - wk.bytesFree()).toBeLessThan(6 * (largest * 4 + 64));
  });

  it('never grows its memory, and says which option to raise when it is full', () => {
    const wk = newKernels(4 * 1024 * 1024);
    const buffer = wk.memory.buffer;
    useKernels(wk);
    const ws = new Workspace();
    expect(() => ws.get(2 * 1024 * 1024)).toThrow(expect.objectContaining({
      code: 'DPT_ERR_MEMORY', message: expect.stringContaining('options.memoryBytes'),
    }));
    expect(ws.get(1000).length).toBe(1000); // the workspace is still usable afterwards
    expect(wk.memory.buffer).toBe(buffer);
    expect(buffer.byteLength).toBe(4 * 1024 * 1024);
  });
});

describe('the allocator hook', () => {
  it('buildModel, the layers and allocFloats allocate in the wasm memory while the kernels are active', () => {
    const wk = newKernels(32 * 1024 * 1024);
    useKernels(wk);
    expect(activeKernelKind()).toBe('wasm');
    expect(allocator()).toBe(wk);
    const model = buildModel({ inputShape: [28, 28], layers: [{ type: 'lstm', units: 8 }, { type: 'dense', units: 3 }] });
    expect(wk.owns(model.params)).toBe(true);
    expect(wk.owns(model.grads)).toBe(true);
    const x = allocFloats(2 * 784);
    const y = model.forward(x, 2, { training: true, seed: 1, step: 0, rowOffset: 0 });
    expect(wk.owns(y)).toBe(true);
    // Explicit buffers are used as given.
    const shared = new Float32Array(new SharedArrayBuffer(model.size * 4));
    expect(buildModel(model.spec, { params: shared }).params).toBe(shared);
  });

  it('switching back to the TypeScript kernels moves workspaces back to the heap', () => {
    const wk = newKernels(8 * 1024 * 1024);
    useKernels(wk);
    const ws = new Workspace();
    const inWasm = ws.get(100);
    expect(wk.owns(inWasm)).toBe(true);
    const used = wk.bytesInUse();
    useKernels(null);
    expect(allocator()).toBe(heapAllocator);
    const onHeap = ws.get(100);
    expect(wk.owns(onHeap)).toBe(false);
    expect(wk.bytesInUse()).toBe(used - 448); // the wasm buffer was given back
    expect(buildModel({ inputShape: [4], layers: [{ type: 'dense', units: 2 }] }).params.buffer).toBeInstanceOf(ArrayBuffer);
  });
});
