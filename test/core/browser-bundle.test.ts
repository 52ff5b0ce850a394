// src/ is the shared core: it must bundle for a browser with no Node built-in.
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('the core bundles for the browser', () => {
  it('every src/ module bundles with platform "browser" and imports no Node built-in', async () => {
    const entries = tsFiles(join(ROOT, 'src'));
    expect(entries.length).toBeGreaterThan(20);
    const stdin = { contents: entries.map((f) => `export * as m${entries.indexOf(f)} from './${relative(ROOT, f)}';`).join('\n'), resolveDir: ROOT, loader: 'ts' as const };
    const result = await build({
      stdin, bundle: true, write: false, platform: 'browser', format: 'esm', logLevel: 'silent',
      plugins: [{
        name: 'no-node-builtins',
        setup(b) {
          b.onResolve({ filter: /^(node:|fs$|path$|os$|crypto$|worker_threads$|child_process$|net$|http$|https$|url$|buffer$|stream$)/ }, (args) => ({
            errors: [{ text: `src/ imports the Node built-in "${args.path}" from ${relative(ROOT, args.importer)}` }],
          }));
        },
      }],
    });
    expect(result.errors).toEqual([]);
    const code = result.outputFiles[0].text;
    expect(code).not.toMatch(/require\(["'](fs|path|crypto|node:)/);
  });
});
