// The browser suite on a machine without Chromium, in a real `vitest run`:
// it skips and prints why (so `npm test` passes on a fresh machine), and
// with DPTRAIN_REQUIRE_BROWSER=1 (.ci/run) it fails at once instead (no
// hang in afterAll).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { CHROMIUM_ENV, REQUIRE_BROWSER_ENV } from '../helpers/chromium.js';

function vitestBrowserSuite(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  // The child's own environment: none of this run's VITEST_* or browser variables (CI sets one); dist/ is built already.
  const base = Object.fromEntries(Object.entries(process.env)
    .filter(([k]) => !k.startsWith('VITEST') && k !== CHROMIUM_ENV && k !== REQUIRE_BROWSER_ENV));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', 'test/browser/browser.test.ts'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...base, DPTRAIN_TEST_DIST_BUILT: '1', NO_COLOR: '1', ...env },
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('the browser suite without Chromium', () => {
  const missing = { [CHROMIUM_ENV]: join(ROOT, 'no-such-chromium') };

  it('skips, printing the reason, and passes', async () => {
    const r = await vitestBrowserSuite(missing);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`browser.test.ts skipped: no headless Chromium at ${missing[CHROMIUM_ENV]}`);
    expect(r.output).toMatch(/3 skipped/);
  });

  it(`fails with ${REQUIRE_BROWSER_ENV}=1, as on CI`, async () => {
    const r = await vitestBrowserSuite({ ...missing, [REQUIRE_BROWSER_ENV]: '1' });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`${missing[CHROMIUM_ENV]} not found, and ${REQUIRE_BROWSER_ENV}=1 makes the browser suite required`);
  });
});
