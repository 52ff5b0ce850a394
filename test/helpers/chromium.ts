// Where the browser suites find headless Chromium, or why they skip. A
// fresh machine without a browser still passes `npm test` (the suites skip
// and print the reason); CI, which installs Chromium (.ci/run), sets
// DPTRAIN_REQUIRE_BROWSER=1 so that a missing browser fails instead.
import { existsSync } from 'node:fs';

/** Another Chromium executable than Debian's /usr/bin/chromium. */
export const CHROMIUM_ENV = 'DPTRAIN_CHROMIUM';
/** `1`: the browser suites are required: a missing browser fails them instead of skipping. */
export const REQUIRE_BROWSER_ENV = 'DPTRAIN_REQUIRE_BROWSER';

export interface ChromiumChoice {
  path: string;
  /** Why the suites skip, or null when they run (Chromium found, or required). */
  skipReason: string | null;
}

export function findChromium(env: NodeJS.ProcessEnv = process.env): ChromiumChoice {
  const path = env[CHROMIUM_ENV] ?? '/usr/bin/chromium';
  if (existsSync(path) || env[REQUIRE_BROWSER_ENV] === '1') return { path, skipReason: null };
  return {
    path,
    skipReason: `no headless Chromium at ${path} (install Debian's chromium, apt-get install -y chromium, ` +
      `or point ${CHROMIUM_ENV} at one; ${REQUIRE_BROWSER_ENV}=1 makes this a failure, as in .ci/run)`,
  };
}
