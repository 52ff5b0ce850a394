// The dataset cache in a real `dptrain train` process: it lives outside the
// working directory, and one that cannot be written is a one-line coded error.
// Permissions are only real for a non-root user, so as root the runs switch
// to `nobody` (root ignores file modes).
import { describe, expect, it } from 'vitest';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson, type RunOptions } from '../helpers/cli.js';

const NOBODY = 65534;
const user: RunOptions['user'] = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : undefined;

/** A folder the test user owns (and so can write). */
function ownedDir(path: string): string {
  mkdirSync(path, { recursive: true });
  if (user !== undefined) chownSync(path, user.uid, user.gid);
  return path;
}

/** A folder nobody but root can write. */
function readOnlyDir(path: string): string {
  mkdirSync(path, { recursive: true });
  chmodSync(path, 0o555);
  return path;
}

function setup() {
  const base = tempDir('dptrain-cache-');
  chmodSync(base, 0o755); // mkdtemp makes 0700: let the test user in
  const config = writeJson(base, 'small.json', smallMlpConfig({ maxSteps: 2 }));
  const env = { DPTRAIN_CACHE: undefined, XDG_CACHE_HOME: undefined, HOME: ownedDir(join(base, 'home')) };
  return { base, config, env, out: ownedDir(join(base, 'out')), ro: readOnlyDir(join(base, 'ro')) };
}

describe('dataset cache (real process)', () => {
  it('trains from a read-only working directory, caching under ~/.cache/dptrain; a filled read-only cache is only read', async () => {
    const { config, env, out, ro } = setup();
    const a = await runCli(['train', '--config', config, '--out', join(out, 'a'), '--workers', '0', '--json'], { cwd: ro, env, user });
    expect(a.code, a.stderr).toBe(0);
    expect(readdirSync(ro)).toEqual([]);
    const cache = join(env.HOME, '.cache', 'dptrain');
    expect(existsSync(join(cache, 'mnist-split-v1.json'))).toBe(true);

    chmodSync(cache, 0o555);
    const b = await runCli(['train', '--config', config, '--out', join(out, 'b'), '--workers', '0', '--json'], { cwd: ro, env: { ...env, DPTRAIN_CACHE: cache }, user });
    expect(b.code, b.stderr).toBe(0);
    expect(lastJson(b.stdout).weightsSha256).toBe(lastJson(a.stdout).weightsSha256);
  });

  it('an unwritable DPTRAIN_CACHE is one line naming the folder and the variable, exit 1, no stack trace', async () => {
    const { config, env, out, ro } = setup();
    const cache = join(ro, 'cache');
    const r = await runCli(['train', '--config', config, '--out', join(out, 'a'), '--workers', '0'], { cwd: ro, env: { ...env, DPTRAIN_CACHE: cache }, user });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`dptrain: error [DPT_ERR_CACHE]: cannot write the dataset cache ${cache} (EACCES: permission denied, mkdir '${cache}'); set DPTRAIN_CACHE to a writable folder\n`);
  });
});
