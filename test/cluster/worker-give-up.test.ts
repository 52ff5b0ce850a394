// A worker pointed at a host that does not exist: one line per attempt, the
// waits growing, and after --give-up-after one coded error line, exit 1.
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('dptrain worker --give-up-after', () => {
  it('a wrong host: exits 1 within 30 s of --give-up-after 20, one coded line, at most 8 lines before it', async () => {
    const t0 = performance.now();
    const r = await runCli(['worker', '--connect', 'ws://no-such-host.invalid:7070', '--give-up-after', '20'], { timeoutMs: 60_000 });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.code, r.stderr).toBe(1);
    expect(seconds).toBeGreaterThanOrEqual(19.5);
    expect(seconds).toBeLessThan(30);
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines.pop()).toMatch(/^dptrain: error \[DPT_ERR_CONNECT\]: no coordinator reached at ws:\/\/no-such-host\.invalid:7070\/ws in 2\d s \(\d+ attempts; the last: getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid\); check the address/);
    expect(lines.length, r.stderr).toBeLessThanOrEqual(8);
    for (const line of lines) expect(line).toMatch(/^worker: cannot reach ws:\/\/no-such-host\.invalid:7070\/ws \(getaddrinfo .*\); reconnecting in \d+ ms \(attempt \d+; giving up in [\d.]+ s\)$/);
    const waits = lines.map((l) => Number(/reconnecting in (\d+) ms/.exec(l)![1]));
    // Growing (each cap doubles; the last wait is cut to the deadline).
    for (let i = 1; i < waits.length - 1; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1] / 2);
    expect(r.stdout).toBe('');
  });

  it('--give-up-after must be a whole number', async () => {
    const r = await runCli(['worker', '--connect', 'ws://127.0.0.1:1', '--give-up-after', 'soon']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--give-up-after must be a whole number');
  });
});
