// plainIssueMessage: zod's stock messages in our wording, with the value given.
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { formatZodError, plainIssueMessage } from '../../src/check/zod-format.js';

const Schema = z.strictObject({
  lr: z.number().positive(),
  momentum: z.number().min(0).max(1),
  units: z.number().int(),
  fraction: z.number().gt(0).lt(1),
  name: z.string().min(1),
  layers: z.array(z.number()).min(1),
  view: z.enum(['flat', 'rows']),
  kind: z.literal('mnist'),
  data: z.discriminatedUnion('type', [z.strictObject({ type: z.literal('mnist') }), z.strictObject({ type: z.literal('csv') })]),
  count: z.number({ error: 'expected a positive whole number' }),
});

function messages(value: unknown): string[] {
  const r = Schema.safeParse(value, { error: plainIssueMessage });
  expect(r.success).toBe(false);
  return formatZodError(r.error!).split('\n');
}

describe('plainIssueMessage', () => {
  it('words bounds, types and choices as the rest of our messages, with the value given', () => {
    expect(messages({
      lr: -0.1, momentum: 1.5, units: 2.5, fraction: 1, name: '', layers: [], view: 'cols', kind: 'csv', data: { type: 'parquet' }, count: 'x',
    })).toEqual([
      'lr: must be > 0, got -0.1',
      'momentum: must be <= 1, got 1.5',
      'units: must be a whole number, got 2.5',
      'fraction: must be < 1, got 1',
      'name: must not be empty',
      'layers: must have at least 1 item, got 0',
      'view: must be one of "flat", "rows", got "cols"',
      'kind: must be "mnist", got "csv"',
      'data.type: must be one of "mnist", "csv", got "parquet"',
      'count: expected a positive whole number', // a schema's own message wins
    ]);
  });

  it('names a wrong type and a missing field', () => {
    const [lr, momentum] = messages({ lr: '0.1' });
    expect(lr).toBe('lr: expected a number, got "0.1"');
    expect(momentum).toBe('momentum: missing: expected a number');
  });
});
