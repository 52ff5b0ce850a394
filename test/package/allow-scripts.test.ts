// npm 11 runs a dependency's install script only when package.json's
// allowScripts approves it, and warns about every one it does not cover.
// Every install script of the installed tree is decided (approved or denied,
// each for a reason given in the README), and what must work natively does:
//   esbuild        true   fetches and checks its platform binary (the build)
//   bufferutil     true   ws's native frame masking; prebuilt, loads with or without the script
//   core-js        false  a postinstall banner only (through @tensorflow/tfjs, a dev dependency)
//   msgpackr-extract false  builds from source when no prebuilt binary fits; the prebuilt
//                         @msgpackr-extract/* packages load without it
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const require = createRequire(import.meta.url);

describe('install scripts', () => {
  it('every install script in node_modules is approved or denied in allowScripts (npm ci warns of none)', () => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
    const out = execFileSync('npm', ['install-scripts', 'ls', '--json'], { cwd: ROOT, encoding: 'utf8', env });
    expect(JSON.parse(out)).toEqual({ allowScripts: [] });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { allowScripts: Record<string, boolean> };
    expect(pkg.allowScripts).toEqual({ esbuild: true, bufferutil: true, 'core-js': false, 'msgpackr-extract': false });
  });

  it('the native parts load: bufferutil (ws) and msgpackr-extract', () => {
    const bufferutil = require('bufferutil') as { mask: () => void };
    expect(bufferutil.mask.toString()).toContain('[native code]');
    expect(isNativeAccelerationEnabled).toBe(true);
  });
});
