// Builds dist/ once before the suites that start real `dptrain` processes.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export default function setup(): void {
  // A vitest run started by a test (test/browser/skip.test.ts) must not rebuild dist/ under the running suites.
  if (process.env.DPTRAIN_TEST_DIST_BUILT === '1') return;
  execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.js', import.meta.url))], { stdio: 'inherit' });
}
