// dptrain as a user gets it: `npm pack` of a copy of the sources (its
// prepack builds dist/), the tarball installed into a fresh project with its
// dependencies from the npm registry, then used there as a user would:
//   (a) `npx dptrain train` of an example config, and `npx dptrain predict`;
//   (b) a TypeScript program importing `dptrain` type-checks (strict, no
//       skipLibCheck) and runs: build, train on 2 threads, predict, save,
//       load, predict again to the same bits; its browser page type-checks
//       against `dptrain/core` with the DOM library and no Node types;
//   (c) an esbuild bundle of that page (dptrain/core, kernels.wasm through
//       esbuild's file loader) predicts in headless Chromium, from the model
//       file Node saved, the classes Node predicted.
// One pack, one install. Without the registry the suite skips and says why;
// without Chromium, (c) does (DPTRAIN_REQUIRE_BROWSER=1 makes that a failure).
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, REQUIRE_BROWSER_ENV } from '../helpers/chromium.js';
import { ROOT } from '../helpers/cli.js';

const run = promisify(execFile);

/** What consumer/page.ts leaves in globalThis.__result (that file is the user's, type-checked against the installed package only). */
interface PageResult {
  kernels: string;
  classes: number[];
  labels: string[];
  probabilities: number[];
}
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const CHROMIUM = findChromium();

/** This environment less npm's own variables (a nested npm must not inherit `npm test`'s). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

function registrySkipReason(): string | null {
  try {
    execFileSync('npm', ['ping'], { stdio: 'pipe', timeout: 30_000, env: cleanEnv() });
    return null;
  } catch (err) {
    return `the npm registry is not reachable (npm ping: ${String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim().split('\n').pop()})`;
  }
}

const REGISTRY_SKIP = registrySkipReason();
if (REGISTRY_SKIP !== null) console.warn(`test/package/package.test.ts skipped: ${REGISTRY_SKIP}`);

async function sh(file: string, args: string[], cwd: string, timeout = 300_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(file, args, { cwd, env: cleanEnv(), timeout, maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')} failed in ${cwd}: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
}

/** `any` keywords (not words in comments) in a declaration file. */
function anyKeywords(file: ts.SourceFile): number[] {
  const scanner = ts.createScanner(ts.ScriptTarget.Latest, true, ts.LanguageVariant.Standard, file.text);
  const lines: number[] = [];
  for (let token = scanner.scan(); token !== ts.SyntaxKind.EndOfFileToken; token = scanner.scan()) {
    if (token === ts.SyntaxKind.AnyKeyword) lines.push(file.getLineAndCharacterOfPosition(scanner.getTokenStart()).line + 1);
  }
  return lines;
}

describe.skipIf(REGISTRY_SKIP !== null)('the npm package', () => {
  const work = mkdtempSync(join(tmpdir(), 'dptrain-package-'));
  const consumer = join(work, 'consumer');
  let tarball = '';
  let entries: string[] = [];

  beforeAll(async () => {
    // The sources as a publisher has them: tracked and new files, nothing git ignores (no dist/).
    const source = join(work, 'source');
    const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: ROOT, encoding: 'utf8' }).split('\0').filter((f) => f !== '' && existsSync(join(ROOT, f)));
    for (const f of files) cpSync(join(ROOT, f), join(source, f), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
    await sh('npm', ['pack', '--pack-destination', work], source, 600_000);
    tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
    entries = (await sh('tar', ['-tzf', tarball], work)).stdout.trim().split('\n').map((p) => p.replace(/^package\//, ''));

    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    await sh('npm', ['install', '--no-audit', '--no-fund', tarball, '@types/node@^20'], consumer, 600_000);
    for (const f of readdirSync(join(ROOT, 'test/package/consumer'))) cpSync(join(ROOT, 'test/package/consumer', f), join(consumer, f));
    cpSync(join(ROOT, 'examples/data/blobs.csv'), join(consumer, 'blobs.csv'));
  }, 900_000);

  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it('holds what runs and nothing else', () => {
    const size = statSync(tarball).size;
    console.log(`${basename(tarball)}: ${(size / 1024).toFixed(0)} KiB, ${entries.length} files`);
    for (const needed of [
      'package.json', 'README.md', 'bin/dptrain.js', 'dist/coordinator/cli/cli.js', 'dist/coordinator/index.js', 'dist/coordinator/index.d.ts',
      'dist/src/index.js', 'dist/src/index.d.ts', 'dist/node/threads/thread-entry.js', 'dist/wasm/kernels.wasm', 'examples/mnist-mlp.json',
    ]) expect(entries, needed).toContain(needed);
    const stray = entries.filter((p) =>
      /^(test|bench|scripts|deploy|wasm|\.ci|coordinator|worker|src|dist\/bench)\//.test(p) || p.endsWith('.map') || (p.endsWith('.ts') && !p.endsWith('.d.ts')));
    expect(stray).toEqual([]);
    expect(size).toBeLessThan(1024 * 1024);
    // docs/api.md's figures stay true (within 10%: they are rounded, and files come and go).
    const docs = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');
    const stated = /tarball of `npm pack`: about (\d+) KiB,\s+[\d.]+ MB unpacked, (\d+) files/.exec(docs);
    expect(stated, 'docs/api.md states the tarball\'s size and file count').not.toBeNull();
    expect(Math.abs(Number(stated![1]) * 1024 / size - 1), `docs/api.md says ${stated![1]} KiB`).toBeLessThan(0.1);
    expect(Math.abs(Number(stated![2]) / entries.length - 1), `docs/api.md says ${stated![2]} files`).toBeLessThan(0.1);
  });

  it('(a) `npx dptrain train` trains an example config in the installed package, and `predict` uses the model', async () => {
    const { stdout } = await sh('npx', ['--no-install', 'dptrain', 'train', '--config', 'node_modules/dptrain/examples/csv-blobs.json',
      '--out', 'run-cli', '--workers', '2', '--json', '--quiet'], consumer);
    const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { workers: number; test: { accuracy: number } };
    expect(summary.workers).toBe(2);
    expect(summary.test.accuracy).toBeGreaterThan(0.9);
    const predicted = await sh('npx', ['--no-install', 'dptrain', 'predict', 'run-cli/model.dptmodel', '--input', 'blobs.csv', '--label', 'kind'], consumer);
    expect(predicted.stdout.split('\n')[0]).toBe('class,p_amber,p_cobalt,p_jade');
    expect(predicted.stderr).toMatch(/accuracy 9\d\.\d\d%/);
  });

  it('(b) a TypeScript program type-checks (strict, no skipLibCheck) and builds, trains on 2 threads, predicts, saves and loads', async () => {
    await sh(process.execPath, [TSC, '-p', 'tsconfig.json'], consumer);
    await sh(process.execPath, [TSC, '-p', 'tsconfig.browser.json'], consumer);
    await sh(process.execPath, ['out/use.js'], consumer);
    const r = JSON.parse(readFileSync(join(consumer, 'node-result.json'), 'utf8')) as Record<string, unknown> & { classes: number[]; labels: string[] };
    expect(r.refused).toBe('DPT_ERR_MODEL_SPEC: model.layers[0].units: expected a positive integer');
    expect(r.builtParameters).toBe(4 * 16 + 16 + 16 * 3 + 3);
    expect(r.events).toEqual(['start', 'step', 'epoch', 'checkpoint']);
    expect(r.workers).toBe(2);
    expect(r.classNames).toEqual(['amber', 'cobalt', 'jade']);
    expect(r.featureNames).toEqual(['feature_a', 'feature_b', 'feature_c', 'temperature']);
    expect(r.sameAfterLoad).toBe(true);
    expect(r.classes).toHaveLength(600);
    expect(new Set(r.labels)).toEqual(new Set(['amber', 'cobalt', 'jade']));
    expect(r.accuracy).toBeGreaterThan(0.9);
    // The package's examples from an installed package, and the errors a user meets on the way.
    expect(r.examplesDir).toBe(join(consumer, 'node_modules', 'dptrain', 'examples'));
    expect(r.exampleStatus).toBe('finished 3 steps');
    expect(r.exampleCsvRows).toBe(600);
    expect(r.exampleMissing).toMatch(/^DPT_ERR_CONFIG: .*examples\/csv-blobs\.json: cannot read the config file \(ENOENT.*\); the package's example is .*\/node_modules\/dptrain\/examples\/csv-blobs\.json$/);
    expect(r.secondRun).toContain('DPT_ERR_OUTPUT: out: "run-example": holds a run');
    expect(r.secondRun).toContain('continue that run with resume: "run-example", add force: true');
  });

  it('declares no `any` in what `dptrain` and `dptrain/core` export', () => {
    const config = ts.getParsedCommandLineOfConfigFile(join(consumer, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
    const program = ts.createProgram({ rootNames: [...config.fileNames, join(consumer, 'page.ts')], options: config.options });
    const ours = program.getSourceFiles().filter((f) => f.fileName.includes('/node_modules/dptrain/'));
    expect(ours.map((f) => basename(f.fileName))).toEqual(expect.arrayContaining(['index.d.ts', 'model.d.ts', 'train.d.ts']));
    const found = ours.flatMap((f) => anyKeywords(f).map((line) => `${f.fileName.replace(/.*node_modules\//, '')}:${line}`));
    expect(found).toEqual([]);
  });

  if (CHROMIUM.skipReason !== null) console.warn(`test/package/package.test.ts (c) skipped: ${CHROMIUM.skipReason}`);

  it.skipIf(CHROMIUM.skipReason !== null)('(c) an esbuild bundle of dptrain/core predicts in headless Chromium the classes Node predicted', async () => {
    if (!existsSync(CHROMIUM.path)) throw new Error(`${CHROMIUM.path} not found, and ${REQUIRE_BROWSER_ENV}=1 makes the browser suites required`);
    const node = JSON.parse(readFileSync(join(consumer, 'node-result.json'), 'utf8')) as { rows: number[][]; classes: number[]; labels: string[]; probabilities: number[] };
    const bundle = await build({
      entryPoints: [join(consumer, 'page.ts')], absWorkingDir: consumer, bundle: true, write: false, outdir: join(consumer, 'www'),
      platform: 'browser', format: 'esm', target: 'es2022', loader: { '.wasm': 'file' }, publicPath: '/', logLevel: 'silent',
      plugins: [{
        name: 'no-node-builtins',
        setup(b) {
          b.onResolve({ filter: /^node:/ }, (args) => ({ errors: [{ text: `${args.importer} imports ${args.path}` }] }));
        },
      }],
    });
    const routes = new Map<string, [string, string | Uint8Array]>([
      ['/', ['text/html', '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>']],
      ['/model.dptmodel', ['application/octet-stream', readFileSync(join(consumer, 'model.dptmodel'))]],
      ['/rows.json', ['application/json', JSON.stringify(node.rows)]],
      ...bundle.outputFiles.map((f): [string, [string, Uint8Array]] =>
        [`/${basename(f.path)}`, [f.path.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', f.contents]]),
    ]);
    expect([...routes.keys()].some((k) => /^\/kernels-.*\.wasm$/.test(k))).toBe(true);
    const server: Server = createServer((req, res) => {
      const route = routes.get(new URL(req.url ?? '/', 'http://x').pathname);
      if (route === undefined) res.writeHead(404).end();
      else res.writeHead(200, { 'content-type': route[0] }).end(route[1]);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const profile = mkdtempSync(join(tmpdir(), 'dptrain-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM.path, headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    try {
      const page = context.pages()[0] ?? await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      await page.waitForFunction(() => (globalThis as { __result?: unknown }).__result !== undefined);
      let result: PageResult;
      try {
        result = await page.evaluate(() => (globalThis as unknown as { __result: Promise<PageResult> }).__result);
      } catch (err) {
        throw new Error(`the page failed: ${(err as Error).message}\n${errors.join('\n')}`);
      }
      expect(result.kernels).toBe('wasm-simd');
      expect(result.classes).toEqual(node.classes);
      expect(result.labels).toEqual(node.labels);
      expect(result.probabilities).toHaveLength(node.probabilities.length);
      result.probabilities.forEach((p, i) => expect(Math.abs(p - node.probabilities[i]), `probability ${i}`).toBeLessThan(1e-6));
    } finally {
      await context.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
