// The command the CLI's hints name: dptrain (on PATH), npx dptrain (a clone,
// a project with the package), or node and the script's path.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { commandName, shellWord } from '../../coordinator/cli/command-name.js';

const root = mkdtempSync(join(tmpdir(), 'dptrain-command-name-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A package folder holding bin/dptrain.js, as a clone or node_modules/dptrain has it. */
function packageAt(dir: string): string {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'dptrain', bin: { dptrain: 'bin/dptrain.js' } }));
  writeFileSync(join(dir, 'bin', 'dptrain.js'), '');
  return join(dir, 'bin', 'dptrain.js');
}

describe('commandName', () => {
  it('a clone: npx dptrain, from its root or a folder inside it', () => {
    const script = packageAt(join(root, 'clone'));
    mkdirSync(join(root, 'clone', 'runs'));
    expect(commandName(script, join(root, 'clone'), '/usr/bin')).toBe('npx dptrain');
    expect(commandName(script, join(root, 'clone', 'runs'), '/usr/bin')).toBe('npx dptrain');
  });

  it('a project that installed the package: npx dptrain (node_modules/.bin links to it)', () => {
    const project = join(root, 'project');
    const script = packageAt(join(project, 'node_modules', 'dptrain'));
    writeFileSync(join(project, 'package.json'), '{"name": "mine"}');
    mkdirSync(join(project, 'node_modules', '.bin'));
    symlinkSync('../dptrain/bin/dptrain.js', join(project, 'node_modules', '.bin', 'dptrain'));
    expect(commandName(script, project, '')).toBe('npx dptrain');
  });

  it('on PATH (a global install, the container image): dptrain', () => {
    const script = packageAt(join(root, 'global', 'lib', 'dptrain'));
    mkdirSync(join(root, 'global', 'bin'));
    symlinkSync(script, join(root, 'global', 'bin', 'dptrain'));
    expect(commandName(script, root, `/usr/bin:${join(root, 'global', 'bin')}`)).toBe('dptrain');
  });

  it('elsewhere: node and the path of the script (relative below cwd, else absolute), quoted for a shell if need be', () => {
    const script = packageAt(join(root, 'some where'));
    mkdirSync(join(root, 'elsewhere'));
    expect(commandName(script, join(root, 'elsewhere'), '/usr/bin')).toBe(`node ${shellWord(script)}`);
    expect(shellWord(script)).toMatch(/^'\/.*some where\/bin\/dptrain\.js'$/);
    expect(commandName(script, root, '/usr/bin')).toBe(`node 'some where/bin/dptrain.js'`);
    expect(shellWord('runs/a-1')).toBe('runs/a-1');
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });
});
