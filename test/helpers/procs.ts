// Real `dptrain` processes for cluster tests: a coordinator (`train
// --listen 127.0.0.1:0`) whose address is read from the line it prints, and
// workers. Tests wait on what the processes print or on their exit, never
// on a fixed sleep; `waitFor` gives up only as a backstop, with the output
// so far in the message.
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, ROOT } from './cli.js';

export interface Proc {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  readonly out: () => string;
  readonly stdout: () => string;
  /** Resolves with the first match of re in the output (past or future); rejects if the process exits first. */
  waitFor(re: RegExp, backstopMs?: number): Promise<RegExpMatchArray>;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<Proc>();

/**
 * `dptrain ARGS` as a child process; `wrap` runs it through another command
 * (e.g. `ip netns exec NS`). `env` is added to this process's environment
 * (an undefined value removes the variable); `cwd` defaults to the checkout.
 */
export function spawnCli(args: string[], env: Record<string, string | undefined> = {}, name = args[0], wrap: string[] = [], cwd = ROOT): Proc {
  const argv = [...wrap, process.execPath, BIN, ...args];
  const childEnv: Record<string, string | undefined> = { ...process.env, ...env };
  for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k];
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv });
  let out = '';
  let stdout = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer, isStdout: boolean) => {
    out += d.toString();
    if (isStdout) stdout += d.toString();
    for (const l of [...listeners]) l();
  };
  child.stdout.on('data', (d: Buffer) => onData(d, true));
  child.stderr.on('data', (d: Buffer) => onData(d, false));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      done = true;
      live.delete(proc);
      for (const l of [...listeners]) l();
      resolve({ code, signal });
    });
  });
  const proc: Proc = {
    child, exited,
    out: () => out,
    stdout: () => stdout,
    waitFor(re, backstopMs = 90_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m !== null) { finish(); resolve(m); return; }
          if (done) { finish(); reject(new Error(`${name} exited before printing ${re}:\n${out}`)); }
        };
        const timer = setTimeout(() => { finish(); reject(new Error(`${name}: no ${re} within ${backstopMs} ms:\n${out}`)); }, backstopMs);
        const finish = () => { clearTimeout(timer); listeners.delete(check); };
        listeners.add(check);
        check();
      });
    },
    kill(signal = 'SIGTERM') {
      if (!done) child.kill(signal);
    },
  };
  live.add(proc);
  return proc;
}

/** Kills every process still running (afterEach/afterAll). */
export async function killAll(): Promise<void> {
  const procs = [...live];
  for (const p of procs) p.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
}

export interface Coordinator {
  proc: Proc;
  url: string;
  port: number;
}

/** `dptrain train --listen HOST:PORT ...` (default 127.0.0.1, a free port), resolved once it listens. */
export async function startCoordinator(args: string[], env: Record<string, string> = {}, port = 0, host = '127.0.0.1'): Promise<Coordinator> {
  const proc = spawnCli(['train', '--listen', `${host}:${port}`, ...args], env, 'coordinator');
  const m = await proc.waitFor(/listening on (wss?:\/\/[^\s/]+:(\d+)\/ws)/);
  return { proc, url: m[1], port: Number(m[2]) };
}

export function startWorker(url: string, args: string[] = [], env: Record<string, string> = {}, name = 'worker', wrap: string[] = []): Proc {
  return spawnCli(['worker', '--connect', url, ...args], env, name, wrap);
}

/** The JSON object on the last line of a process's stdout. */
export function summaryOf(p: Proc): Record<string, any> {
  const lines = p.stdout().trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

export { ROOT };
