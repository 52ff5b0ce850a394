// Content hashes that name what a run computes on: the session (model spec,
// loss, seed) and the dataset blob. Both sides of a connection compute them
// independently and compare (the handshake), so they must be defined once,
// here, in code that runs in Node and in browsers alike.
import { sha256Hex } from '../data/sha256.js';

/** Deterministic JSON: object keys sorted, undefined fields dropped, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const utf8 = new TextEncoder();

/** SHA-256 (hex) of the canonical JSON of a value. */
export function hashJson(value: unknown): string {
  return sha256Hex(utf8.encode(canonicalJson(value)));
}
