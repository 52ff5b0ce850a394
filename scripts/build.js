// Builds dist/ from the TypeScript sources. Runs on `npm install` / `npm ci`
// (the `prepare` script), so a fresh clone needs nothing else.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', new URL('../tsconfig.json', import.meta.url).pathname], { stdio: 'inherit' });
