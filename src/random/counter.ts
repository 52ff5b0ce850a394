// Counter-based randomness (docs/design.md principle 4): every random number is a
// pure function of its key, e.g. (seed, step, sample, layer, element). No
// state to share between workers, no dependence on who computes what, and
// no Math.random anywhere in training.

/** 32-bit finalizer of MurmurHash3 (good avalanche, cheap). */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Mix one more 32-bit word into a hash state. */
function mix(h: number, k: number): number {
  k = Math.imul(k | 0, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** A 32-bit hash of up to five counters. Pass whole numbers < 2^32. */
export function hash32(a: number, b = 0, c = 0, d = 0, e = 0): number {
  let h = 0x9747b28c;
  h = mix(h, a);
  h = mix(h, b);
  h = mix(h, c);
  h = mix(h, d);
  h = mix(h, e);
  return fmix32(h ^ 20);
}

/** Uniform in [0, 1) with 32 bits of resolution, from a key. */
export function uniform(a: number, b = 0, c = 0, d = 0, e = 0): number {
  return hash32(a, b, c, d, e) / 4294967296;
}

/**
 * A sequential stream keyed by (seed, stream): the i-th draw is
 * uniform(seed, stream, i), so a stream can be re-created at any position.
 */
export class CounterStream {
  private i = 0;
  constructor(private readonly seed: number, private readonly stream: number) {}
  /** Uniform in [0, 1). */
  next(): number {
    return uniform(this.seed, this.stream, this.i++, 0x5eed);
  }
  /** Standard normal by Box-Muller (uses two draws). */
  normal(): number {
    let u = this.next();
    if (u < 1e-12) u = 1e-12;
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}
