// Loads the reference fixtures vendored in test/fixtures/reference/ (PyTorch and
// scikit-learn values; their README gives the format).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FixtureFile } from '../../src/check/fixture.js';

export const FIXTURES_DIR = fileURLToPath(new URL('../fixtures/reference/', import.meta.url));

export function loadFixture(file: string): FixtureFile {
  return FixtureFile.parse(JSON.parse(readFileSync(FIXTURES_DIR + file, 'utf8')));
}

