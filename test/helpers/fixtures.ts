// Loads the shared reference fixtures (../shared/fixtures beside the repo).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FixtureFile } from '../../src/check/fixture.js';

export const FIXTURES_DIR = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

export function loadFixture(file: string): FixtureFile {
  return FixtureFile.parse(JSON.parse(readFileSync(FIXTURES_DIR + file, 'utf8')));
}

/** The project's own copies of reference fixtures (test/fixtures/reference: the conv2d, pool2d and adam sets). */
export const REFERENCE_DIR = fileURLToPath(new URL('../fixtures/reference/', import.meta.url));

export function loadReferenceFixture(file: string): FixtureFile {
  return FixtureFile.parse(JSON.parse(readFileSync(REFERENCE_DIR + file, 'utf8')));
}
