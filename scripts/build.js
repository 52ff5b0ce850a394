// Builds dist/ from the sources: TypeScript (tsc), the WebAssembly SIMD
// kernels (AssemblyScript, scripts/build-wasm.js) and the browser bundles
// (esbuild, scripts/build-web.js). Runs on `npm install` /
// `npm ci` (the `prepare` script), so a fresh clone needs nothing else.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('../tsconfig.json', import.meta.url))], { stdio: 'inherit' });
execFileSync(process.execPath, [fileURLToPath(new URL('./build-wasm.js', import.meta.url))], { stdio: 'inherit' });
execFileSync(process.execPath, [fileURLToPath(new URL('./build-web.js', import.meta.url))], { stdio: 'inherit' });
