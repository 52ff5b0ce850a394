// Runs the real `dptrain` command (bin/dptrain.js over dist/) in a child process.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = join(ROOT, 'bin/dptrain.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  timeoutMs?: number;
  /** Added to (or, as undefined, removed from) this process's environment. */
  env?: Record<string, string | undefined>;
  /** Run as this user (needs root): permission tests must not run as root, which ignores file modes. */
  user?: { uid: number; gid: number };
}

export function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...opts.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env, ...opts.user });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
    child.on('error', reject);
    child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** The JSON object on the last line of stdout. */
export function lastJson(stdout: string): Record<string, any> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

export function tempDir(prefix = 'dptrain-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** A small, fast MNIST config for tests. */
export function smallMlpConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    seed: 3,
    data: { type: 'mnist', view: 'flat', trainLimit: 512, testLimit: 256 },
    model: { inputShape: [784], layers: [{ type: 'dense', units: 32, activation: 'relu' }, { type: 'dense', units: 10 }] },
    loss: 'softmax_cross_entropy',
    optimizer: { lr: 0.05, momentum: 0.9 },
    epochs: 1,
    batchSize: 64,
    microShards: 4,
    ...overrides,
  };
}
