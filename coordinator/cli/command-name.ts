// How the user can run dptrain again from where they are, for command lines
// the CLI prints (`resume with: npx dptrain train --resume DIR`): `dptrain`
// when that name on PATH is this very program (a global install, the
// container image), `npx dptrain` when npx finds it from the working
// directory (a clone, or a project that installed the package), else `node`
// and the path of this script (relative when it lies below cwd).
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, relative } from 'node:path';

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** The folder npx starts from: the nearest one up from cwd with a package.json or node_modules (npm's local prefix). */
function localPrefix(cwd: string): string | null {
  for (let dir = cwd; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'node_modules'))) return dir;
    if (dirname(dir) === dir) return null;
  }
}

function npxFinds(script: string, cwd: string): boolean {
  const prefix = localPrefix(cwd);
  if (prefix === null) return false;
  if (sameFile(join(prefix, 'node_modules', '.bin', 'dptrain'), script)) return true;
  // The package's own folder (a clone): npx runs the project's own bin.
  try {
    const pkg = JSON.parse(readFileSync(join(prefix, 'package.json'), 'utf8')) as { name?: unknown; bin?: Record<string, unknown> };
    const bin = pkg.bin?.dptrain;
    return pkg.name === 'dptrain' && typeof bin === 'string' && sameFile(join(prefix, bin), script);
  } catch {
    return false;
  }
}

/** `path` as one shell word (quoted if it needs to be), for a command line the user can paste. */
export function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/** The command that runs this dptrain from `cwd`: 'dptrain', 'npx dptrain' or 'node <script>'. */
export function commandName(script = process.argv[1] ?? 'dptrain', cwd = process.cwd(), path = process.env.PATH ?? ''): string {
  for (const dir of path.split(delimiter)) {
    if (dir !== '' && sameFile(join(dir, 'dptrain'), script)) return 'dptrain';
  }
  if (npxFinds(script, cwd)) return 'npx dptrain';
  // A path up and over (../../app/bin/...) reads worse than the absolute one.
  const rel = relative(cwd, script);
  return `node ${shellWord(rel === '' || rel.startsWith('..') ? script : rel)}`;
}
