// Builds the browser side into dist/web/ with esbuild: the dashboard (/),
// its sign-in page (the 401 at / without the viewer credential), the
// volunteer page (/join) and a tab's two Web Workers, each one
// self-contained bundle (uPlot and its CSS included: the pages load nothing
// from anywhere but the coordinator), plus the two HTML pages. The
// coordinator serves them (coordinator/serve/pages.ts).
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = `${root}dist/web`;
mkdirSync(out, { recursive: true });

const common = { bundle: true, platform: 'browser', target: 'es2022', minify: true, sourcemap: false, logLevel: 'warning', absWorkingDir: root };
// Pages are modules; the workers are classic scripts (a nested module worker is not everywhere).
await build({
  ...common, format: 'esm', outdir: out,
  entryPoints: {
    dashboard: 'coordinator/serve/dashboard/dashboard.ts', 'sign-in': 'coordinator/serve/dashboard/sign-in.ts', join: 'worker/browser/join-page.ts',
  },
});
await build({
  ...common, format: 'iife', outdir: out,
  entryPoints: { 'tab-worker': 'worker/browser/tab-worker.ts', 'compute-worker': 'worker/browser/compute-worker.ts' },
});
copyFileSync(`${root}coordinator/serve/dashboard/index.html`, `${out}/index.html`);
copyFileSync(`${root}coordinator/serve/dashboard/sign-in.html`, `${out}/sign-in.html`);
copyFileSync(`${root}worker/browser/join.html`, `${out}/join.html`);
copyFileSync(`${root}worker/browser/join.css`, `${out}/join.css`);
console.log('build-web: dashboard, sign-in page, join page and tab workers -> dist/web/');
