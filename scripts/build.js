// Builds dist/ from the sources: TypeScript (tsc, with declarations), the
// WebAssembly SIMD kernels (AssemblyScript, scripts/build-wasm.js) and the
// browser bundles (esbuild, scripts/build-web.js). Runs on `npm install` /
// `npm ci` (the `prepare` script), so a fresh clone needs nothing else, and
// before `npm pack` / `npm publish` (the `prepack` script), so the tarball
// carries dist/: a registry install runs no build.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const event = process.env.npm_lifecycle_event;
// npm pack and publish run prepack, then prepare: one build is enough.
if (event === 'prepare' && ['pack', 'publish'].includes(process.env.npm_command ?? '')) {
  console.log('build: dist/ was built by prepack');
  process.exit(0);
}
// The tarball has no TypeScript sources for source maps to point at.
const tscOptions = event === 'prepack' ? ['--sourceMap', 'false'] : [];

const require = createRequire(import.meta.url);
rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });
const tsc = require.resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', fileURLToPath(new URL('../tsconfig.json', import.meta.url)), ...tscOptions], { stdio: 'inherit' });
execFileSync(process.execPath, [fileURLToPath(new URL('./build-wasm.js', import.meta.url))], { stdio: 'inherit' });
execFileSync(process.execPath, [fileURLToPath(new URL('./build-web.js', import.meta.url))], { stdio: 'inherit' });
