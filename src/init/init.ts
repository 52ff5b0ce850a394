// Seeded, deterministic parameter initializers (Glorot / He, uniform and
// normal). Each parameter draws from its own counter stream keyed by
// (seed, parameter index), so adding a layer at the end does not change the
// initial weights of the layers before it.
import type { InitKind } from '../nn/layer.js';
import { CounterStream } from '../random/counter.js';

export function initParam(out: Float32Array, kind: InitKind, fanIn: number, fanOut: number, seed: number, paramIndex: number): void {
  const rng = new CounterStream(seed, 0x1000 + paramIndex);
  switch (kind) {
    case 'zeros':
      out.fill(0);
      return;
    case 'ones':
      out.fill(1);
      return;
    case 'glorot_uniform': {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * limit;
      return;
    }
    case 'glorot_normal': {
      const std = Math.sqrt(2 / (fanIn + fanOut));
      for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
      return;
    }
    case 'he_uniform': {
      const limit = Math.sqrt(6 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = (2 * rng.next() - 1) * limit;
      return;
    }
    case 'he_normal': {
      const std = Math.sqrt(2 / fanIn);
      for (let i = 0; i < out.length; i++) out[i] = rng.normal() * std;
      return;
    }
  }
}
