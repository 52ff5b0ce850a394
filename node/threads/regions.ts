// Result regions: SharedArrayBuffers the coordinator owns and lends to one
// order at a time, into which a thread writes its aligned-block sums. A
// region goes back to the pool only once its order has settled, so a late
// or failed order can never scribble over an accepted answer. The step loop
// also names the caller's own shared buffers (the optimizer state) as
// regions, which are never lent out.

/** A result region as the step loop names it. */
export interface StepRegion {
  readonly id: number;
  readonly buffer: SharedArrayBuffer;
  readonly floats: Float32Array;
}

export interface Region extends StepRegion {
  /** Gradient vectors it holds (0: a buffer of the caller's). */
  readonly blocks: number;
}

/** Result regions lent to one order at a time, sized in blocks of one gradient vector each. */
export class RegionPool {
  private readonly free: Region[] = [];
  private count = 0;
  private readonly adopted = new Map<SharedArrayBuffer, Region>();

  constructor(private readonly blockFloats: number) {}

  acquire(blocks: number): Region {
    const i = this.free.findIndex((r) => r.blocks >= blocks);
    if (i >= 0) return this.free.splice(i, 1)[0];
    const buffer = new SharedArrayBuffer(blocks * this.blockFloats * 4);
    return { id: this.count++, buffer, floats: new Float32Array(buffer), blocks };
  }

  /** The region over a buffer of the caller's (e.g. the optimizer state): the same id every time, never lent out. */
  adopt(buffer: SharedArrayBuffer): Region {
    let region = this.adopted.get(buffer);
    if (region === undefined) {
      region = { id: this.count++, buffer, floats: new Float32Array(buffer), blocks: 0 };
      this.adopted.set(buffer, region);
    }
    return region;
  }

  release(region: Region): void {
    this.free.push(region);
  }
}
