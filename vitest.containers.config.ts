// `npm run test:containers`: the suites that build the image and run real
// containers with podman (test/deploy/containers). Kept out of `npm test`,
// which needs neither root nor a container engine and stays ~2 minutes;
// .ci/run sets podman up and runs both.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/deploy/containers/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 900_000,
    pool: 'forks',
    fileParallelism: false,
    // dist/ for the host's reference runs, then the one image every suite runs.
    globalSetup: ['test/global-setup.ts', 'test/deploy/containers/global-setup.ts'],
  },
});
