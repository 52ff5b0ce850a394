// Turns a zod error into one line per problem, each naming the place:
// `layers[2].units: expected a positive integer`. plainIssueMessage words
// zod's stock messages the same way (`optimizer.lr: must be > 0, got -0.1`,
// not `Too small: expected number to be >0`).
import type { z } from 'zod';

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export function formatZodError(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((issue) => {
      const path = formatPath(issue.path);
      const where = prefix && path ? `${prefix}.${path}` : prefix || path || '(root)';
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') message = `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      return `${where}: ${message}`;
    })
    .join('\n');
}

/** A value as a message shows it: strings quoted, arrays and objects by kind. */
function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  if (value !== null && typeof value === 'object') return 'an object';
  return String(value);
}

function plural(n: number | bigint, word: string): string {
  return `${n} ${word}${n === 1 || n === 1n ? '' : 's'}`;
}

/**
 * The error map to parse configs with (`schema.safeParse(value, { error:
 * plainIssueMessage })`): our wording for zod's stock messages, with the
 * value that was given. A schema's own message still wins; issues not
 * covered here keep zod's (undefined).
 */
export const plainIssueMessage: z.core.$ZodErrorMap = (issue) => {
  const input: unknown = issue.input;
  switch (issue.code) {
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const bound = small ? issue.minimum : issue.maximum;
      if (issue.origin === 'number' || issue.origin === 'int' || issue.origin === 'bigint') {
        return `must be ${small ? '>' : '<'}${issue.inclusive ? '=' : ''} ${bound}, got ${shown(input)}`;
      }
      if (issue.origin === 'string' && small && Number(bound) === 1) return 'must not be empty';
      const unit = issue.origin === 'string' ? 'character' : 'item';
      const length = Array.isArray(input) || typeof input === 'string' ? `, got ${input.length}` : '';
      return `must have ${small ? 'at least' : 'at most'} ${plural(bound, unit)}${length}`;
    }
    case 'invalid_type':
      if (input === undefined) return `missing: expected ${issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`}`;
      if (issue.expected === 'int') return `must be a whole number, got ${shown(input)}`;
      return `expected a ${issue.expected}, got ${shown(input)}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${shown(issue.values[0])}, got ${shown(input)}`
        : `must be one of ${issue.values.map(shown).join(', ')}, got ${shown(input)}`;
    case 'invalid_union':
      if (typeof issue.discriminator === 'string' && Array.isArray(issue.options)) {
        // The issue's path ends at the discriminator, its input is the object around it.
        const given = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[issue.discriminator] : input;
        return `must be one of ${(issue.options as unknown[]).map(shown).join(', ')}, got ${shown(given)}`;
      }
      return undefined;
    default:
      return undefined;
  }
};
