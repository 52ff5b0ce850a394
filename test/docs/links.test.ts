// The docs hold together: every relative link and image of README.md and
// docs/**/*.md points at a file of the repository, every #anchor at a
// heading of its page (GitHub's slugs), the README stays a two-minute read,
// and nothing tracked names a path outside the repository. No network.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** README.md and every page under docs/ (not the generated API reference). */
function pages(): string[] {
  const found = [join(ROOT, 'README.md')];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory() && e.name !== 'api-reference') walk(join(dir, e.name));
      else if (e.isFile() && e.name.endsWith('.md')) found.push(join(dir, e.name));
    }
  };
  walk(join(ROOT, 'docs'));
  return found;
}

/** The text outside fenced code blocks and inline code: links there are examples, not links. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: markup dropped, lowercased, punctuation removed, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}_\- ]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a page; a repeated heading gets -1, -2, ... as on GitHub. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of readFileSync(file, 'utf8').replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '').split('\n')) {
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** The targets of a page's links and images: [text](target) and ![alt](target "title"). */
function links(file: string): string[] {
  return [...prose(readFileSync(file, 'utf8')).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
}

describe('the docs', () => {
  it('slugs headings as GitHub does', () => {
    expect(slug('Fault injection (`--chaos`)')).toBe('fault-injection---chaos');
    expect(slug("Health, readiness and metrics")).toBe('health-readiness-and-metrics');
    expect(slug('`dptrain/core`')).toBe('dptraincore');
    expect(slug('Untrusted contributions: `--verify-fraction F`')).toBe('untrusted-contributions---verify-fraction-f');
  });

  it('finds the pages and their links', () => {
    const all = pages().map((p) => relative(ROOT, p));
    expect(all).toEqual(expect.arrayContaining(['README.md', 'docs/design.md', 'docs/cli.md', 'docs/errors.md']));
    expect(links(join(ROOT, 'README.md')).length).toBeGreaterThan(10);
  });

  it('every relative link and image resolves to a file, every #anchor to a heading', () => {
    const broken: string[] = [];
    for (const page of pages()) {
      for (const target of links(page)) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [path = '', anchor] = target.split('#');
        const file = path === '' ? page : join(dirname(page), decodeURIComponent(path));
        const where = `${relative(ROOT, page)}: ${target}`;
        if (!existsSync(file)) broken.push(`${where} (no such file)`);
        else if (anchor !== undefined && (!file.endsWith('.md') || !anchors(file).has(anchor))) broken.push(`${where} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('keeps the README under 200 lines', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length).toBeLessThan(200);
  });

  it('names no path outside the repository in any tracked file', () => {
    const outside = ['..', 'shared'].join('/'); // spelled in two pieces so that this file does not match itself
    let found = '';
    try {
      found = execFileSync('git', ['grep', '-n', '-F', '-e', outside, '-e', `/work${'/'}shared`], { cwd: ROOT, encoding: 'utf8' });
    } catch (e) {
      if ((e as { status?: number }).status !== 1) throw e; // 1: no match
    }
    expect(found).toBe('');
  });
});
