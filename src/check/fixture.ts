// The reference-fixture format of test/fixtures/reference/README.md, as zod
// schemas, plus the comparison the conformance runner and the tests use.
// Pure: reading the files is the caller's business.
import * as z from 'zod';

export const FixtureTensor = z.object({
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(['float64', 'int64']),
  data: z.array(z.number()),
}).refine((t) => t.data.length === t.shape.reduce((a, b) => a * b, 1), {
  message: 'data length does not match the shape',
});

const TensorMap = z.record(z.string(), FixtureTensor);

export const FixtureCase = z.looseObject({
  label: z.string(),
  op: z.string().optional(),
  config: z.record(z.string(), z.unknown()).default({}),
  inputs: TensorMap.default({}),
  params: TensorMap.default({}),
  upstream: TensorMap.optional(),
  outputs: TensorMap.default({}),
  grads: TensorMap.optional(),
  grads_sum: TensorMap.optional(),
  diagnostics: z.record(z.string(), z.unknown()).optional(),
});

export const FixtureFile = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  cases: z.array(FixtureCase),
});

export type FixtureTensor = z.infer<typeof FixtureTensor>;
export type FixtureCase = z.infer<typeof FixtureCase>;
export type FixtureFile = z.infer<typeof FixtureFile>;

/** The tensor's values rounded to float32 (inputs are float32-exact by construction). */
export function toF32(t: FixtureTensor): Float32Array {
  return Float32Array.from(t.data);
}

/** Transpose a row-major [rows, cols] matrix. */
export function transpose(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

export interface Comparison {
  ok: boolean;
  /** max |a - e| / (atol + rtol |e|): <= 1 passes. */
  worstRatio: number;
  /** max |a - e| / max(|e|, atol / rtol): the relative error, floored near zero. */
  worstRelErr: number;
  worstIndex: number;
  /** Set when the lengths differ. */
  lengthMismatch?: { actual: number; expected: number };
}

export const F32_TOL = { rtol: 1e-4, atol: 1e-5 } as const;

/** Elementwise |actual - expected| <= atol + rtol * |expected|. */
export function compareTensor(
  actual: ArrayLike<number>, expected: FixtureTensor | ArrayLike<number>,
  rtol: number = F32_TOL.rtol, atol: number = F32_TOL.atol,
): Comparison {
  const e: ArrayLike<number> = 'data' in expected ? (expected).data : (expected);
  if (actual.length !== e.length) {
    return { ok: false, worstRatio: Infinity, worstRelErr: Infinity, worstIndex: -1, lengthMismatch: { actual: actual.length, expected: e.length } };
  }
  let worstRatio = 0, worstRelErr = 0, worstIndex = -1;
  for (let i = 0; i < e.length; i++) {
    const diff = Math.abs(actual[i] - e[i]);
    const ratio = Number.isNaN(diff) ? Infinity : diff / (atol + rtol * Math.abs(e[i]));
    const rel = Number.isNaN(diff) ? Infinity : diff / Math.max(Math.abs(e[i]), atol / rtol);
    if (ratio > worstRatio) { worstRatio = ratio; worstIndex = i; }
    if (rel > worstRelErr) worstRelErr = rel;
  }
  return { ok: worstRatio <= 1, worstRatio, worstRelErr, worstIndex };
}
