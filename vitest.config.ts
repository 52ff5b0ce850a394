import { defineConfig } from 'vitest/config';

/**
 * The suites that need dist/ built (they start `dptrain` processes, worker
 * threads, browsers, network namespaces): the `e2e` project. Everything else
 * runs in-process against the sources with only the WebAssembly kernels
 * built: the `unit` project, `npx vitest run --project unit`, in seconds.
 */
const E2E = [
  'test/api/train.test.ts',
  'test/bench/**/*.test.ts',
  'test/browser/**/*.test.ts',
  'test/cli/**/*.test.ts',
  'test/cluster/**/*.test.ts',
  'test/deploy/*.test.ts',
  'test/engines/step-loop.test.ts',
  'test/http/healthcheck.test.ts',
  'test/package/**/*.test.ts',
  'test/tensor/wasm-threads.test.ts',
  'test/threads/**/*.test.ts',
];
// Real containers: `npm run test:containers` (vitest.containers.config.ts).
const CONTAINERS = 'test/deploy/containers/**';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: [...E2E, CONTAINERS, '**/node_modules/**'],
          globalSetup: ['test/unit-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: E2E,
          exclude: [CONTAINERS, '**/node_modules/**'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
});
