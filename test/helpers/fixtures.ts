// Loads the shared reference fixtures (../shared/fixtures beside the repo).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { FixtureFile } from '../../src/check/fixture.js';

export const FIXTURES_DIR = fileURLToPath(new URL('../../../shared/fixtures/', import.meta.url));

export function loadFixture(file: string): FixtureFile {
  return FixtureFile.parse(JSON.parse(readFileSync(FIXTURES_DIR + file, 'utf8')));
}
