// The package's example configs by name, as absolute paths, so a program
// that installed dptrain trains one without knowing where npm put the
// package: `train({ config: examples['csv-blobs'] })`. examplesDir is the
// folder (its data/ holds the CSV the CSV example reads).
import { existsSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const EXAMPLE_NAMES = ['mnist-mlp', 'mnist-mlp-bn-dropout', 'mnist-lstm', 'mnist-gru', 'mnist-cnn', 'csv-blobs'] as const;
export type ExampleName = (typeof EXAMPLE_NAMES)[number];

/** examples/ of the package, from dist/coordinator/run/ (the package) or coordinator/run/ (the sources, in tests). */
function findExamplesDir(): string {
  const candidates = [new URL('../../../examples/', import.meta.url), new URL('../../examples/', import.meta.url)].map((u) => fileURLToPath(u));
  return candidates.find((dir) => existsSync(join(dir, `${EXAMPLE_NAMES[0]}.json`))) ?? candidates[0];
}

/** The absolute path of the package's examples/ folder. */
export const examplesDir: string = normalize(findExamplesDir()).replace(/[\\/]$/, '');

/** Each example config's absolute path, by name. */
export const examples: Readonly<Record<ExampleName, string>> = Object.freeze(
  Object.fromEntries(EXAMPLE_NAMES.map((name) => [name, join(examplesDir, `${name}.json`)])) as Record<ExampleName, string>,
);

/**
 * For a relative path that names an example (`examples/csv-blobs.json`,
 * `csv-blobs.json`) but is not where it was looked for: the package's copy,
 * or null.
 */
export function packageExampleFor(path: string): string | null {
  if (isAbsolute(path)) return null;
  const rel = normalize(path).split(sep).filter((p) => p !== '.');
  const inside = rel[0] === 'examples' ? rel.slice(1) : rel;
  const candidate = join(examplesDir, ...inside);
  return inside.length > 0 && existsSync(candidate) ? candidate : null;
}
