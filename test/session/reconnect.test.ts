// The waits between reconnection attempts, the line per attempt and when a
// worker gives up, on a fake clock and a fixed "random".
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../worker/session/backoff.js';
import { Reconnector } from '../../worker/session/reconnect.js';

describe('Backoff (equal jitter)', () => {
  it('each delay in [cap/2, cap], the cap doubling to the ceiling; reset starts again', () => {
    const low = new Backoff({ first: 500, max: 10_000 }, () => 0);
    expect(Array.from({ length: 7 }, () => low.next())).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    const high = new Backoff({ first: 500, max: 10_000 }, () => 1);
    expect(Array.from({ length: 7 }, () => high.next())).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    high.reset();
    expect(high.next()).toBe(500);
    expect(() => new Backoff({ first: 0, max: 1 })).toThrow(RangeError);
  });
});

describe('Reconnector', () => {
  const make = (giveUpAfterMs: number) => {
    let t = 1000;
    const r = new Reconnector({ url: 'ws://h:1/ws', backoff: { first: 500, max: 10_000 }, giveUpAfterMs, giveUpHint: 'or wait longer', now: () => t, random: () => 1 });
    return { r, advance: (ms: number) => { t += ms; } };
  };

  it('never welcomed: one line per attempt with the cause and the time left, then gives up at the deadline', () => {
    const { r, advance } = make(20_000);
    const lines: string[] = [];
    let end = '';
    for (let i = 0; i < 20 && end === ''; i++) {
      const next = r.next(false, 'getaddrinfo ENOTFOUND h');
      if (next.kind === 'give-up') { end = next.message; break; }
      lines.push(next.line);
      advance(next.delayMs + 10); // the attempt itself takes 10 ms
    }
    expect(lines[0]).toBe('cannot reach ws://h:1/ws (getaddrinfo ENOTFOUND h); reconnecting in 500 ms (attempt 1; giving up in 20 s)');
    expect(lines[1]).toBe('cannot reach ws://h:1/ws (getaddrinfo ENOTFOUND h); reconnecting in 1000 ms (attempt 2; giving up in 19 s)');
    // 500, 1000, 2000, 4000, 8000, then the rest of the 20 s: the last attempt falls on the deadline.
    expect(lines).toHaveLength(6);
    expect(lines[5]).toMatch(/reconnecting in 4450 ms \(attempt 6; giving up in 4\.5 s\)$/);
    expect(end).toBe('no coordinator reached at ws://h:1/ws in 20 s (7 attempts; the last: getaddrinfo ENOTFOUND h); check the address and that the coordinator runs, or wait longer');
  });

  it('once welcomed, never gives up; the waits start small again', () => {
    const { r, advance } = make(1000);
    expect(r.next(false, 'refused').kind).toBe('retry');
    advance(5000);
    const after = r.next(true, 'the connection closed');
    expect(after).toEqual({ kind: 'retry', delayMs: 500, line: 'connection to ws://h:1/ws lost (the connection closed); reconnecting in 500 ms' });
    advance(600_000);
    expect(r.next(false, 'connect ECONNREFUSED').kind).toBe('retry');
  });

  it('giveUpAfterMs 0: keeps trying', () => {
    const { r, advance } = make(0);
    advance(10 * 3600_000);
    const next = r.next(false, 'x');
    expect(next.kind).toBe('retry');
    if (next.kind === 'retry') expect(next.line).not.toContain('giving up');
  });
});
