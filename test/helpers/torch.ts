// Where the PyTorch interop checks find PyTorch (Debian's python3-torch,
// the version the reference fixtures were made with), or why they skip. A
// machine without it still passes `npm test` (the suite skips and prints
// the reason); CI, which installs it (.ci/run), sets DPTRAIN_REQUIRE_TORCH=1
// so that a missing PyTorch fails instead.
import { spawnSync } from 'node:child_process';

/** Another Python than Debian's /usr/bin/python3. */
export const PYTHON_ENV = 'DPTRAIN_PYTHON';
/** `1`: the PyTorch checks are required: a missing PyTorch fails them instead of skipping. */
export const REQUIRE_TORCH_ENV = 'DPTRAIN_REQUIRE_TORCH';

export interface TorchChoice {
  python: string;
  /** Why the checks skip, or null when they run. */
  skipReason: string | null;
}

export function findTorch(env: NodeJS.ProcessEnv = process.env): TorchChoice {
  const python = env[PYTHON_ENV] ?? '/usr/bin/python3';
  const probe = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status === 0 || env[REQUIRE_TORCH_ENV] === '1') return { python, skipReason: null };
  return {
    python,
    skipReason: `no PyTorch for ${python} (apt-get install -y python3-torch, or point ${PYTHON_ENV} at a Python that has it; ` +
      `${REQUIRE_TORCH_ENV}=1 makes this a failure, as in .ci/run)`,
  };
}
