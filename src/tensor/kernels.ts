// The one small interface behind which every hot loop of the core lives.
// The pure-TypeScript implementation below is the reference; a WebAssembly
// SIMD implementation can be swapped in with setKernels() without touching
// any layer.
//
// Exactness contract (DESIGN.md principle 3, issue 3): for every form, row i
// of C is a fixed chain of float32-rounded multiply-adds over k in increasing
// order. It does not depend on M, on blocking, or on which rows share a call,
// so a micro-shard computes the same bits alone or inside a larger batch.

export interface Kernels {
  readonly name: string;
  /**
   * C (M, N) = [C +] op(A) op(B), op(A) (M, K), op(B) (K, N), all row-major.
   * transA: A is stored (K, M). transB: B is stored (N, K).
   * With accumulate the products are added to C, else C is overwritten.
   */
  gemm(
    transA: boolean, transB: boolean,
    m: number, n: number, k: number,
    a: Float32Array, b: Float32Array, c: Float32Array,
    accumulate: boolean,
  ): void;
}

// NOTE: accumulations go through Math.fround so that every partial sum is a
// float32, the same arithmetic a float32 SIMD kernel does. A float64 running
// sum would be more accurate but would make the TS and WASM results differ.
const f = Math.fround;

function gemmNN(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // i-k-j order: B and C are walked along rows, so the inner loop is contiguous.
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
    const a0 = i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k;
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p], x1 = a[a1 + p], x2 = a[a2 + p], x3 = a[a3 + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) {
        const y = b[bp + j];
        c[c0 + j] = f(c[c0 + j] + f(x0 * y));
        c[c1 + j] = f(c[c1 + j] + f(x1 * y));
        c[c2 + j] = f(c[c2 + j] + f(x2 * y));
        c[c3 + j] = f(c[c3 + j] + f(x3 * y));
      }
    }
  }
  for (; i < m; i++) {
    const c0 = i * n, a0 = i * k;
    for (let p = 0; p < k; p++) {
      const x0 = a[a0 + p];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[c0 + j] = f(c[c0 + j] + f(x0 * b[bp + j]));
    }
  }
}

function gemmTN(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // A stored (K, M): A^T[i, p] = a[p*m + i]. Same i-k-j order as NN.
  let i = 0;
  for (; i + 4 <= m; i += 4) {
    const c0 = i * n, c1 = c0 + n, c2 = c1 + n, c3 = c2 + n;
    for (let p = 0; p < k; p++) {
      const ap = p * m + i;
      const x0 = a[ap], x1 = a[ap + 1], x2 = a[ap + 2], x3 = a[ap + 3];
      const bp = p * n;
      for (let j = 0; j < n; j++) {
        const y = b[bp + j];
        c[c0 + j] = f(c[c0 + j] + f(x0 * y));
        c[c1 + j] = f(c[c1 + j] + f(x1 * y));
        c[c2 + j] = f(c[c2 + j] + f(x2 * y));
        c[c3 + j] = f(c[c3 + j] + f(x3 * y));
      }
    }
  }
  for (; i < m; i++) {
    const c0 = i * n;
    for (let p = 0; p < k; p++) {
      const x0 = a[p * m + i];
      const bp = p * n;
      for (let j = 0; j < n; j++) c[c0 + j] = f(c[c0 + j] + f(x0 * b[bp + j]));
    }
  }
}

function gemmNT(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  // B stored (N, K): each C[i, j] is a dot product of two contiguous rows.
  for (let i = 0; i < m; i++) {
    const a0 = i * k, c0 = i * n;
    let j = 0;
    for (; j + 4 <= n; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let s0 = c[c0 + j], s1 = c[c0 + j + 1], s2 = c[c0 + j + 2], s3 = c[c0 + j + 3];
      for (let p = 0; p < k; p++) {
        const x = a[a0 + p];
        s0 = f(s0 + f(x * b[b0 + p]));
        s1 = f(s1 + f(x * b[b1 + p]));
        s2 = f(s2 + f(x * b[b2 + p]));
        s3 = f(s3 + f(x * b[b3 + p]));
      }
      c[c0 + j] = s0; c[c0 + j + 1] = s1; c[c0 + j + 2] = s2; c[c0 + j + 3] = s3;
    }
    for (; j < n; j++) {
      const b0 = j * k;
      let s = c[c0 + j];
      for (let p = 0; p < k; p++) s = f(s + f(a[a0 + p] * b[b0 + p]));
      c[c0 + j] = s;
    }
  }
}

function gemmTT(m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): void {
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = c[i * n + j];
      for (let p = 0; p < k; p++) s = f(s + f(a[p * m + i] * b[j * k + p]));
      c[i * n + j] = s;
    }
  }
}

export const tsKernels: Kernels = {
  name: 'typescript',
  gemm(transA, transB, m, n, k, a, b, c, accumulate) {
    if (!accumulate) c.fill(0, 0, m * n);
    if (!transA && !transB) gemmNN(m, n, k, a, b, c);
    else if (transA && !transB) gemmTN(m, n, k, a, b, c);
    else if (!transA && transB) gemmNT(m, n, k, a, b, c);
    else gemmTT(m, n, k, a, b, c);
  },
};

let active: Kernels = tsKernels;

/** The kernels every layer calls. */
export function kernels(): Kernels {
  return active;
}

/** Swap the implementation (the WebAssembly SIMD one, or back to the reference). */
export function setKernels(k: Kernels): void {
  active = k;
}

/** Shorthand used by the layers. */
export function gemm(
  transA: boolean, transB: boolean, m: number, n: number, k: number,
  a: Float32Array, b: Float32Array, c: Float32Array, accumulate: boolean,
): void {
  active.gemm(transA, transB, m, n, k, a, b, c, accumulate);
}
