// Turns a zod error into one line per problem, each naming the place:
// `layers[2].units: expected a positive integer`. plainIssueMessage words
// zod's stock messages the same way (`optimizer.lr: must be > 0, got -0.1`,
// not `Too small: expected number to be >0`).
import type * as z from 'zod';
import { closestName, didYouMean } from './did-you-mean.js';

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
      // plainIssueMessage words it with the known fields; zod's stock message does not name them.
      if (issue.code === 'unrecognized_keys' && !message.startsWith('unknown field')) message = unknownFieldsMessage(issue.keys, []);
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

/** `unknown field "epoch"; did you mean "epochs"?`, or several fields, each with its closest known one. */
export function unknownFieldsMessage(keys: readonly string[], known: readonly string[]): string {
  if (keys.length === 1) return `unknown field "${keys[0]}"${didYouMean(keys[0], known)}`;
  return `unknown fields ${keys.map((k) => {
    const close = closestName(k, known);
    return `"${k}"${close === null ? '' : ` (did you mean "${close}"?)`}`;
  }).join(', ')}`;
}

/** The fields an object schema knows (the `inst` of an unrecognized_keys issue), or none. */
function knownFields(inst: unknown): string[] {
  const shape = (inst as { _zod?: { def?: { shape?: unknown } } } | undefined)?._zod?.def?.shape;
  return shape !== null && typeof shape === 'object' ? Object.keys(shape) : [];
}

/** The allowed values of an enum or union, as strings, for a "did you mean". */
function stringValues(values: readonly unknown[]): string[] {
  return values.filter((v): v is string => typeof v === 'string');
}

function plural(n: number | bigint, word: string): string {
  return `${n} ${word}${n === 1 || n === 1n ? '' : 's'}`;
}

function suggestion(given: unknown, values: readonly string[]): string {
  return typeof given === 'string' ? didYouMean(given, values) : '';
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
        : `must be one of ${issue.values.map(shown).join(', ')}, got ${shown(input)}${suggestion(input, stringValues(issue.values))}`;
    case 'invalid_union':
      if (typeof issue.discriminator === 'string' && Array.isArray(issue.options)) {
        // The issue's path ends at the discriminator, its input is the object around it.
        const given = input !== null && typeof input === 'object' ? (input as Record<string, unknown>)[issue.discriminator] : input;
        const options = issue.options as unknown[];
        return `must be one of ${options.map(shown).join(', ')}, got ${shown(given)}${suggestion(given, stringValues(options))}`;
      }
      return undefined;
    case 'unrecognized_keys':
      return unknownFieldsMessage(issue.keys, knownFields(issue.inst));
    default:
      return undefined;
  }
};
