// "Did you mean": the closest known name within a third of its length.
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { closestName, editDistance } from '../../src/check/did-you-mean.js';
import { formatZodError, plainIssueMessage } from '../../src/check/zod-format.js';
import { parseConfig } from '../../coordinator/run/config.js';

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps', () => {
    expect(editDistance('epoch', 'epochs')).toBe(1);
    expect(editDistance('epochs', 'epoch')).toBe(1);
    expect(editDistance('momentun', 'momentum')).toBe(1);
    expect(editDistance('veiw', 'view')).toBe(1);
    expect(editDistance('vewi', 'view')).toBe(2);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('seed', 'seed')).toBe(0);
  });
});

describe('closestName', () => {
  const fields = ['epochs', 'batchSize', 'seed', 'maxSteps', 'microShards', 'workers'];
  it('finds a near name, ignoring case', () => {
    expect(closestName('epoch', fields)).toBe('epochs');
    expect(closestName('batchsize', fields)).toBe('batchSize');
    expect(closestName('batch_size', fields)).toBe('batchSize');
    expect(closestName('worker', fields)).toBe('workers');
  });
  it('suggests nothing for a name far from every known one', () => {
    expect(closestName('banana', fields)).toBeNull();
    expect(closestName('lr', ['momentum', 'nesterov'])).toBeNull();
    expect(closestName('x', [])).toBeNull();
  });
});

describe('unknown fields and values in a config', () => {
  const config = {
    data: { type: 'mnist', veiw: 'flat' },
    model: { inputShape: [784], layers: [{ type: 'dense', unit: 10 }, { type: 'dens', units: 3 }] },
    loss: 'softmax_crossentropy',
    optimizer: { lr: 0.1, momentun: 0.9 },
    epoch: 3,
    batchSize: 32,
    banana: 1,
  };
  it('names the closest known field, at every depth, and the closest allowed value', () => {
    let message = '';
    try {
      parseConfig(config, 'c.json');
    } catch (e) {
      message = (e as Error).message;
    }
    const lines = message.split('\n');
    expect(lines).toContain('data: unknown field "veiw"; did you mean "view"?');
    expect(lines).toContain('model.layers[0]: unknown field "unit"; did you mean "units"?');
    expect(lines).toContain('optimizer: unknown field "momentun"; did you mean "momentum"?');
    expect(lines).toContain('(root): unknown fields "epoch" (did you mean "epochs"?), "banana"');
    expect(lines.find((l) => l.startsWith('model.layers[1].type:'))).toMatch(/got "dens"; did you mean "dense"\?$/);
    expect(lines.find((l) => l.startsWith('loss:'))).toMatch(/got "softmax_crossentropy"; did you mean "softmax_cross_entropy"\?$/);
  });

  it('a stock zod error (no error map) still names the unknown fields', () => {
    const r = z.strictObject({ a: z.number() }).safeParse({ a: 1, b: 2, c: 3 });
    expect(formatZodError(r.error!)).toBe('(root): unknown fields "b", "c"');
    const plain = z.strictObject({ epochs: z.number() }).safeParse({ epochs: 1, epcohs: 2 }, { error: plainIssueMessage });
    expect(formatZodError(plain.error!)).toBe('(root): unknown field "epcohs"; did you mean "epochs"?');
  });
});
