// docs/errors.md lists every error code of src/errors.ts, and no other.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the error catalog', () => {
  it('documents every ErrorCode in docs/errors.md', () => {
    const union = /export type ErrorCode =([\s\S]*?);/.exec(read('src/errors.ts'))![1];
    const declared = [...union.matchAll(/'(DPT_ERR_[A-Z_]+)'/g)].map((m) => m[1]).sort();
    const documented = [...read('docs/errors.md').matchAll(/^\| `(DPT_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]).sort();
    expect(declared.length).toBeGreaterThan(10);
    expect(documented).toEqual(declared);
  });
});
