// WebAssembly max and average pooling for dptrain (AssemblyScript), NCHW.
// The JS side is src/tensor/wasm-conv.ts; the reference, which these match
// BIT FOR BIT (contract: src/tensor/conv-kernels.ts), src/tensor/pool-ts.ts.
// Geometry block: 14 i32 (C H W O kh kw sh sw dh dw pt pl Ho Wo) as for
// wasm/conv.ts. The common 2x2 window of stride 2 without padding runs
// four outputs at a time in SIMD (the same comparisons per lane as the
// scalar loop); any other window goes through the scalar loop.

let C = 0, H = 0, W = 0, kh = 0, kw = 0, sh = 0, sw = 0, dh = 0, dw = 0, pt = 0, pl = 0, Ho = 0, Wo = 0;

function readGeometry(g: usize): void {
  C = load<i32>(g); H = load<i32>(g, 4); W = load<i32>(g, 8);
  kh = load<i32>(g, 16); kw = load<i32>(g, 20); sh = load<i32>(g, 24); sw = load<i32>(g, 28);
  dh = load<i32>(g, 32); dw = load<i32>(g, 36); pt = load<i32>(g, 40); pl = load<i32>(g, 44);
  Ho = load<i32>(g, 48); Wo = load<i32>(g, 52);
}

// Along one axis, output o's taps read input o*s - pad + tap*d: the first
// tap inside [0, size), and one past the last.
@inline function tapLo(o: i32, s: i32, d: i32, pad: i32, k: i32): i32 {
  let lo = 0;
  while (lo < k && o * s - pad + lo * d < 0) lo++;
  return lo;
}
@inline function tapHi(o: i32, s: i32, d: i32, pad: i32, k: i32, size: i32): i32 {
  let hi = k;
  while (hi > 0 && o * s - pad + (hi - 1) * d >= size) hi--;
  return hi;
}

@inline function is2x2(): bool {
  return kh == 2 && kw == 2 && sh == 2 && sw == 2 && dh == 1 && dw == 1 && pt == 0 && pl == 0;
}

// y and argmax of outputs ow0.. of row oh of one plane (xp, yp, ap), scalar.
function maxRow(xp: usize, yp: usize, ap: usize, oh: i32, ow0: i32): void {
  const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
  for (let ow = ow0; ow < Wo; ow++) {
    const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
    let best: f32 = 0;
    let at = -1;
    for (let ki = k0; ki < k1; ki++) {
      const row = (oh * sh + ki * dh - pt) * W;
      for (let kj = j0; kj < j1; kj++) {
        const cell = row + ow * sw + kj * dw - pl;
        const v = load<f32>(xp + <usize>cell * 4);
        if (at < 0 || v > best || v != v) {
          best = v;
          at = cell;
        }
      }
    }
    store<f32>(yp + <usize>(oh * Wo + ow) * 4, best);
    store<f32>(ap + <usize>(oh * Wo + ow) * 4, <f32>at);
  }
}

/** y (N, C, Ho, Wo) and argmax (the winning cell ih*W + iw, as a float) from x (N, C, H, W). */
export function maxPoolForward(g: usize, N: i32, y: usize, argmax: usize, x: usize): void {
  readGeometry(g);
  const fast = is2x2();
  for (let plane = 0; plane < N * C; plane++) {
    const xp = x + <usize>(plane * H * W) * 4;
    const yp = y + <usize>(plane * Ho * Wo) * 4, ap = argmax + <usize>(plane * Ho * Wo) * 4;
    for (let oh = 0; oh < Ho; oh++) {
      let ow = 0;
      if (fast) {
        const r0 = xp + <usize>(2 * oh * W) * 4, r1 = r0 + <usize>W * 4;
        for (; ow + 4 <= Wo; ow += 4) {
          // Four windows: taps (0,0) (0,1) (1,0) (1,1) of outputs ow..ow+3, in the scalar loop's order.
          const o = <usize>(2 * ow) * 4;
          const a0 = v128.load(r0 + o), a1 = v128.load(r0 + o, 16);
          const b0 = v128.load(r1 + o), b1 = v128.load(r1 + o, 16);
          const cell = 2 * oh * W + 2 * ow;
          const i00 = f32x4.convert_i32x4_s(i32x4.add(i32x4.splat(cell), i32x4(0, 2, 4, 6)));
          let best = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6);
          let at = i00;
          let v = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
          let m = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, m);
          at = v128.bitselect(f32x4.add(i00, f32x4.splat(1)), at, m);
          v = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6);
          m = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, m);
          at = v128.bitselect(f32x4.add(i00, f32x4.splat(<f32>W)), at, m);
          v = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
          m = v128.or(f32x4.gt(v, best), f32x4.ne(v, v));
          best = v128.bitselect(v, best, m);
          at = v128.bitselect(f32x4.add(i00, f32x4.splat(<f32>(W + 1))), at, m);
          v128.store(yp + <usize>(oh * Wo + ow) * 4, best);
          v128.store(ap + <usize>(oh * Wo + ow) * 4, at);
        }
      }
      maxRow(xp, yp, ap, oh, ow);
    }
  }
}

/** dx (N, C, H, W) = 0, then dx[argmax] += dy over the outputs in order. */
export function maxPoolBackward(g: usize, N: i32, dx: usize, dy: usize, argmax: usize): void {
  readGeometry(g);
  memory.fill(dx, 0, <usize>(N * C * H * W) * 4);
  const P = Ho * Wo;
  for (let plane = 0; plane < N * C; plane++) {
    const xp = dx + <usize>(plane * H * W) * 4;
    const o0 = plane * P;
    for (let o = o0; o < o0 + P; o++) {
      const cell = xp + <usize>(<i32>load<f32>(argmax + <usize>o * 4)) * 4;
      store<f32>(cell, load<f32>(cell) + load<f32>(dy + <usize>o * 4));
    }
  }
}

/** y = the window's sum (taps inside x, in order) / kh*kw (countIncludePad) or / those taps, in float64, rounded once. */
export function avgPoolForward(g: usize, N: i32, y: usize, x: usize, countIncludePad: i32): void {
  readGeometry(g);
  for (let plane = 0; plane < N * C; plane++) {
    const xp = x + <usize>(plane * H * W) * 4;
    let o = y + <usize>(plane * Ho * Wo) * 4;
    for (let oh = 0; oh < Ho; oh++) {
      const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
      for (let ow = 0; ow < Wo; ow++) {
        const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
        let s: f32 = 0;
        for (let ki = k0; ki < k1; ki++) {
          const row = xp + <usize>((oh * sh + ki * dh - pt) * W + ow * sw - pl) * 4;
          for (let kj = j0; kj < j1; kj++) s += load<f32>(row + <usize>(kj * dw) * 4);
        }
        const d = countIncludePad != 0 ? kh * kw : (k1 - k0) * (j1 - j0);
        store<f32>(o, <f32>(<f64>s / <f64>d));
        o += 4;
      }
    }
  }
}

/** dx = 0, then every tap inside x of every output += f(dy / divisor), outputs in order. */
export function avgPoolBackward(g: usize, N: i32, dx: usize, dy: usize, countIncludePad: i32): void {
  readGeometry(g);
  memory.fill(dx, 0, <usize>(N * C * H * W) * 4);
  for (let plane = 0; plane < N * C; plane++) {
    const xp = dx + <usize>(plane * H * W) * 4;
    let o = dy + <usize>(plane * Ho * Wo) * 4;
    for (let oh = 0; oh < Ho; oh++) {
      const k0 = tapLo(oh, sh, dh, pt, kh), k1 = tapHi(oh, sh, dh, pt, kh, H);
      for (let ow = 0; ow < Wo; ow++) {
        const j0 = tapLo(ow, sw, dw, pl, kw), j1 = tapHi(ow, sw, dw, pl, kw, W);
        const d = countIncludePad != 0 ? kh * kw : (k1 - k0) * (j1 - j0);
        const share = <f32>(<f64>load<f32>(o) / <f64>d);
        for (let ki = k0; ki < k1; ki++) {
          const row = xp + <usize>((oh * sh + ki * dh - pt) * W + ow * sw - pl) * 4;
          for (let kj = j0; kj < j1; kj++) {
            const cell = row + <usize>(kj * dw) * 4;
            store<f32>(cell, load<f32>(cell) + share);
          }
        }
        o += 4;
      }
    }
  }
}
