// Builds the browser side into dist/web/ with esbuild: the dashboard (/),
// its sign-in page (the 401 at / without the viewer credential), the
// volunteer page (/join) and a tab's two Web Workers (uPlot and its CSS
// included: the pages load nothing from anywhere but the coordinator), plus
// the HTML pages. The coordinator serves them (coordinator/serve/pages.ts).
//
// The two workers are ES modules built together with code splitting: what
// both use (zod, the protocol's checks, hashing) is one chunk, shared.js,
// downloaded once. A volunteer's tab downloads join.*, tab-worker.js,
// compute-worker.js, shared.js and kernels.wasm; test/browser/bundle-size.test.ts
// holds that to a budget. Module workers nested in a worker: Chrome 80,
// Safari 15.5 (the first with nested workers at all), Firefox 114.
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/web`;
mkdirSync(out, { recursive: true });

const common = { bundle: true, platform: 'browser', target: 'es2022', minify: true, sourcemap: false, logLevel: 'warning', absWorkingDir: root };
await build({
  ...common, format: 'esm', outdir: out,
  entryPoints: {
    dashboard: 'coordinator/serve/dashboard/dashboard.ts', 'sign-in': 'coordinator/serve/dashboard/sign-in.ts', join: 'worker/browser/join-page.ts',
  },
});
// NOTE: one fixed chunk name: two entries make at most one shared chunk, and pages.ts serves a fixed list.
await build({
  ...common, format: 'esm', splitting: true, chunkNames: 'shared', outdir: out,
  entryPoints: { 'tab-worker': 'worker/browser/tab-worker.ts', 'compute-worker': 'worker/browser/compute-worker.ts' },
});
copyFileSync(`${root}coordinator/serve/dashboard/index.html`, `${out}/index.html`);
copyFileSync(`${root}coordinator/serve/dashboard/sign-in.html`, `${out}/sign-in.html`);
copyFileSync(`${root}worker/browser/join.html`, `${out}/join.html`);
copyFileSync(`${root}worker/browser/join.css`, `${out}/join.css`);
console.log('build-web: dashboard, sign-in page, join page and tab workers -> dist/web/');
