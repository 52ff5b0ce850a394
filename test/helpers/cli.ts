// Runs the real `dptrain` command (bin/dptrain.js over dist/) in a child process.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

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

/** Runs `dptrain ARGS` to its end (killed after timeoutMs, default 5 min). */
export async function runCli(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const run = startCli(args, opts);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** A `dptrain` child process still running: wait for a line on its stderr, signal it, wait for its end. */
export interface RunningCli {
  child: ChildProcessByStdio<null, Readable, Readable>;
  /** Resolves when stderr so far matches `re`; rejects if the process ends first. */
  stderrMatches(re: RegExp): Promise<void>;
  /** Resolves at the process's end. */
  exited: Promise<RunResult>;
}

export function startCli(args: string[], opts: Omit<RunOptions, 'timeoutMs'> = {}): RunningCli {
  const env = { ...process.env, ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'], env, ...opts.user });
  let stdout = '', stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => {
    stderr += d;
    for (const w of waiters.filter((x) => x.re.test(stderr))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const exited = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child, exited,
    stderrMatches(re) {
      if (re.test(stderr)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        waiters.push({ re, resolve });
        void exited.then((r) => reject(new Error(`the process ended (code ${r.code}, signal ${r.signal}) before stderr matched ${re}:\n${r.stderr}`)));
      });
    },
  };
}

/** The JSON object on the last line of stdout. */
export function lastJson(stdout: string): Record<string, any> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** A run folder's metrics.jsonl, less the wall-clock field (equal runs write equal metrics). */
export function metricsOf(runDir: string): Record<string, unknown>[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => {
    const { trainSeconds: _seconds, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

export function tempDir(prefix = 'dptrain-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeJson(dir: string, name: string, value: unknown): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(value, null, 2));
  return file;
}

/** A small CNN trained with Adam on MNIST's image view (conv 4@5x5, pool, conv 8@3x3, pool, dense 10). */
export function smallCnnConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return smallMlpConfig({
    data: { type: 'mnist', view: 'image', trainLimit: 320, testLimit: 100 },
    model: {
      inputShape: [1, 28, 28],
      layers: [
        { type: 'conv2d', filters: 4, kernelSize: 5, activation: 'relu', kernelInit: 'he_uniform' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'conv2d', filters: 8, kernelSize: 3, activation: 'relu' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 10 },
      ],
    },
    optimizer: { type: 'adam', lr: 0.005 },
    batchSize: 32,
    microShards: 6,
    ...overrides,
  });
}

/** The small CNN with batch normalization per channel after each convolution (ghost batch norm over uneven micro-shards). */
export function smallCnnBnConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return smallCnnConfig({
    model: {
      inputShape: [1, 28, 28],
      layers: [
        { type: 'conv2d', filters: 4, kernelSize: 5, useBias: false, kernelInit: 'he_uniform' },
        { type: 'batchnorm' },
        { type: 'relu' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'conv2d', filters: 8, kernelSize: 3, useBias: false },
        { type: 'batchnorm', momentum: 0.2 },
        { type: 'relu' },
        { type: 'maxpool2d', poolSize: 2 },
        { type: 'flatten' },
        { type: 'dense', units: 10 },
      ],
    },
    ...overrides,
  });
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

/** The small MLP with batch normalization and dropout (ghost batch norm over 8 micro-shards, masks keyed by row). */
export function smallBnConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return smallMlpConfig({
    epochs: 2, microShards: 8,
    model: {
      inputShape: [784],
      layers: [{ type: 'dense', units: 32 }, { type: 'batchnorm' }, { type: 'relu' }, { type: 'dropout', rate: 0.3 }, { type: 'dense', units: 10 }],
    },
    ...overrides,
  });
}

/** A small LSTM over MNIST's rows (28 steps of 28 values). */
export function smallLstmConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return smallMlpConfig({
    epochs: 1, batchSize: 32, microShards: 8,
    data: { type: 'mnist', view: 'rows', trainLimit: 256, testLimit: 128 },
    model: { inputShape: [28, 28], layers: [{ type: 'lstm', units: 16 }, { type: 'dense', units: 10 }] },
    ...overrides,
  });
}

/**
 * The reference the distributed tests compare with: a config file's
 * weightsSha256 trained with --workers 0 (into `dir`/ref-NAME), computed once
 * per file however often and however concurrently it is asked for.
 */
export function referenceHashes(dir: string): (config: string) => Promise<string> {
  const hashes = new Map<string, Promise<string>>();
  return (config) => {
    let hash = hashes.get(config);
    if (hash === undefined) {
      hash = runCli(['train', '--json', '--quiet', '--config', config, '--out', join(dir, `ref-${basename(config, '.json')}`), '--workers', '0'])
        .then((r) => {
          expect(r.code, r.stderr).toBe(0);
          return lastJson(r.stdout).weightsSha256 as string;
        });
      hashes.set(config, hash);
    }
    return hash;
  };
}
