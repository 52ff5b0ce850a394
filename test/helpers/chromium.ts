// Where the browser suites find headless Chromium, or why they skip. A
// fresh machine without a browser still passes `npm test` (the suites skip
// and print the reason); CI, which installs Chromium (.ci/run), sets
// DPTRAIN_REQUIRE_BROWSER=1 so that a missing browser fails instead.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

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

/** Headless Chromium's flags for tests: no sandbox (containers), no GPU, nothing fetched in the background. */
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

export interface LaunchedBrowser {
  context: BrowserContext;
  /** Closes the browser and removes its fresh profile. */
  close(): Promise<void>;
}

/** Chromium with a fresh, empty profile (user-data-dir) of its own. */
export async function launchChromium(path: string, viewport = { width: 1280, height: 900 }): Promise<LaunchedBrowser> {
  if (!existsSync(path)) {
    throw new Error(`${path} not found, and ${REQUIRE_BROWSER_ENV}=1 makes the browser suite required: install Debian's chromium (apt-get install -y chromium), as .ci/run does`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'dptrain-chromium-'));
  const context = await chromium.launchPersistentContext(profile, { executablePath: path, headless: true, args: CHROMIUM_ARGS, viewport });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
