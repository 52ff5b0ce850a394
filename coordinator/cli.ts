// The `dptrain` command line: wiring only (commander parses, the modules
// do the work). Every error ends in one `dptrain: error [CODE]: message`
// line (cli-errors.ts): usage errors exit 2, the others 1.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DptrainError, dptError } from '../src/errors.js';
import { errorLine, exitCodeOf, fromCommanderError, warningLine } from './cli-errors.js';
import { parseConfig, readConfigFile, type TrainConfig } from './config.js';
import { parseChaos, type Fault } from './dispatch/chaos.js';
import { loadTrainData } from './data/load.js';
import { hashConfig } from './checkpoint.js';
import { chaosOf, chooseEngine, defaultWorkers } from './engines.js';
import { createProgress } from './progress.js';
import { runLength, runTraining, trajectoryConfig, type ProgressSink } from './trainer.js';
import { handleStopSignals, SIGNAL_EXIT_CODES, type StopSignals } from './interrupt.js';
import { CONFIG_FILE, defaultRunDir, planOutFolder, requireCheckpoint } from './run-folder.js';
import { formatVerify, runVerify } from './verify.js';
import { runConformance, printConformance } from './conformance.js';
import { exportModelFile } from './export-command.js';
import type { ClusterOptions } from './cluster.js';
import { parseListen } from './net/address.js';
import { resolveToken, TOKEN_ENV, type TokenSources } from './net/secret.js';
import { runWorkerCommand, type WorkerFlags } from '../worker/worker-command.js';
import { defaultKernelKind, KERNELS_ENV, parseKernelKind, setupKernels } from '../worker/kernels-setup.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DEFAULT_CONFIG = `${PACKAGE_ROOT}examples/mnist-mlp.json`;

function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
      throw new InvalidArgumentError(`${name} must be a whole number >= ${min}, got "${value}"`);
    }
    return Number(value);
  };
}

interface RunFlags {
  config?: string;
  epochs?: number;
  seed?: number;
  maxSteps?: number;
  checkpointEvery?: number;
  workers?: number;
  stepTimeoutMs?: number;
  chaos?: string;
  quiet?: boolean;
  json?: boolean;
}

interface TrainFlags extends RunFlags, TokenSources {
  out?: string;
  resume?: string;
  listen?: string;
  minWorkers?: number;
  tlsCert?: string;
  tlsKey?: string;
  peerTimeoutMs?: number;
  autoResume?: boolean;
  force?: boolean;
}

interface VerifyFlags extends RunFlags {
  steps?: number;
}

/** The config with the command line's overrides applied (the command line wins). */
function resolveConfig(file: string, flags: RunFlags): TrainConfig {
  const base = readConfigFile(file);
  const merged = { ...base } as Record<string, unknown>;
  const overrides: [keyof RunFlags, keyof TrainConfig][] = [
    ['epochs', 'epochs'], ['seed', 'seed'], ['maxSteps', 'maxSteps'], ['checkpointEvery', 'checkpointEvery'],
    ['workers', 'workers'], ['stepTimeoutMs', 'stepTimeoutMs'], ['chaos', 'chaos'],
  ];
  for (const [flag, field] of overrides) if (flags[flag] !== undefined) merged[field] = flags[flag];
  return parseConfig(merged, `${file} (with command-line overrides)`);
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The combinations of run-folder options that mean nothing, refused as usage errors. */
function checkRunFolderFlags(flags: TrainFlags): void {
  const usage = (message: string) => dptError('DPT_ERR_USAGE', message);
  if (flags.resume !== undefined) {
    if (flags.out !== undefined) throw usage('--resume and --out: give one (--resume continues the run in its own folder)');
    if (flags.autoResume) throw usage('--resume and --auto-resume: give one (--auto-resume goes with --out)');
    if (flags.force) throw usage('--force starts a new run; it does not go with --resume');
  }
  if (flags.autoResume && flags.out === undefined) throw usage('--auto-resume needs --out DIR: the folder to continue the run in, or to start it in');
}

/** Warns about --chaos faults the run never reaches (they would never fire). */
function warnUnreachedFaults(faults: Fault[], lastStep: number): void {
  for (const f of faults) {
    if (f.step > lastStep) process.stderr.write(warningLine(`--chaos: the ${f.kind} fault at step ${f.step} will not fire: the run ends at step ${lastStep}`) + '\n');
  }
}

async function train(flags: TrainFlags): Promise<void> {
  checkRunFolderFlags(flags);
  const progress = createProgress({ quiet: flags.quiet });
  // Handled from the start: a signal during loading stops the run before its first step, with a checkpoint.
  const stop = handleStopSignals((name) => {
    progress.note?.(`dptrain: ${name}: stopping after a checkpoint (${name === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again quits at once)`);
  });
  try {
    await trainUntilStopped(flags, progress, stop);
  } finally {
    stop.dispose();
  }
}

async function trainUntilStopped(flags: TrainFlags, progress: ProgressSink, stop: StopSignals): Promise<void> {
  let configFile = flags.config ?? DEFAULT_CONFIG;
  if (flags.resume !== undefined) {
    requireCheckpoint(flags.resume);
    if (flags.config === undefined) configFile = join(flags.resume, CONFIG_FILE);
  }
  const config = resolveConfig(configFile, flags);
  const cluster = clusterOptions(flags);
  // A coordinator that listens computes nothing itself unless --workers says so; otherwise, without
  // a worker count, threads or the coordinator's thread, whichever is faster (auto-engine.ts).
  const workers = config.workers ?? (cluster === undefined ? 'auto' : 0);
  const faults = chaosOf(config, workers === 'auto' ? defaultWorkers() : workers, cluster !== undefined);
  const outDir = flags.resume ?? flags.out ?? defaultRunDir(configFile);
  const plan = flags.resume !== undefined ? 'resume' : planOutFolder({
    dir: outDir, autoResume: flags.autoResume === true, force: flags.force === true,
    configHash: hashConfig(trajectoryConfig(config)),
  });
  if (plan === 'replace') process.stderr.write(`dptrain: --force: starting a new run in ${outDir}, replacing the run files there\n`);
  // After a stop request the engine is closed under its step; its complaints about that are noise.
  const engine = chooseEngine(config, workers, (line) => { if (!stop.signal.aborted) progress.note?.(line); }, cluster);
  const data = engine.prepare(await loadTrainData(config.data, { baseDir: dirname(configFile) }));
  warnUnreachedFaults(faults, runLength(config, data.train.n).lastStep);
  const outcome = await runTraining({
    config, data, outDir, resume: plan === 'resume',
    allocParams: engine.allocParams, createEngine: engine.create,
    progress, stopSignal: stop.signal,
  });
  if ('interrupted' in outcome) {
    const name = stop.received() ?? 'SIGTERM';
    process.stderr.write(`dptrain: interrupted at step ${outcome.step}; resume with: dptrain train --resume ${shellWord(outcome.outDir)}\n`);
    process.exitCode = SIGNAL_EXIT_CODES[name];
    return;
  }
  const summary = outcome;
  if (flags.json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
  } else {
    const t = summary.test;
    process.stdout.write(
      `done: ${summary.steps} steps (${summary.epochs.toFixed(2)} epochs) in ${summary.wallSeconds.toFixed(1)} s, ` +
      `${Math.round(summary.samplesPerSec)} samples/s\n` +
      `test: loss ${t.loss.toFixed(4)}` + (t.accuracy !== null ? `, accuracy ${(100 * t.accuracy).toFixed(2)}%, macro-F1 ${t.f1Macro!.toFixed(4)}` : '') + '\n' +
      `weights sha256 ${summary.weightsSha256}\n` +
      (summary.workersChoice === undefined ? '' : `workers: ${summary.workersChoice.reason}\n`) +
      summary.workerStats.filter((w) => w.kind !== 'thread').map((w) =>
        `worker ${w.id} (${w.kind} ${w.host}${w.name === undefined ? '' : ` "${w.name}"`}, ${w.threads} thread${w.threads === 1 ? '' : 's'}): ` +
        `${w.microShards} micro-shards, ${Math.round(w.samplesPerSec)} samples/s, ${w.faults} fault${w.faults === 1 ? '' : 's'}\n`).join('') +
      `wrote ${summary.outDir}/{config.json,metrics.jsonl,model.dptmodel,checkpoint.msgpack}\n`,
    );
  }
}

/** The cluster options of `train --listen`, checked; undefined without --listen. */
function clusterOptions(flags: TrainFlags): ClusterOptions | undefined {
  if (flags.listen === undefined) {
    const stray = (['minWorkers', 'token', 'tokenFile', 'tlsCert', 'tlsKey', 'peerTimeoutMs'] as const).find((f) => flags[f] !== undefined);
    if (stray !== undefined) throw dptError('DPT_ERR_USAGE', `--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --listen HOST:PORT`);
    return undefined;
  }
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw dptError('DPT_ERR_USAGE', '--tls-cert and --tls-key go together');
  return {
    listen: parseListen(flags.listen),
    minWorkers: flags.minWorkers ?? 1,
    token: resolveToken(flags),
    peerTimeoutMs: flags.peerTimeoutMs ?? 5000,
    ...(flags.tlsCert === undefined ? {} : { tls: { certFile: flags.tlsCert, keyFile: flags.tlsKey! } }),
  };
}

/** `path` as one shell word (quoted if it needs to be), for a command line the user can paste. */
function shellWord(path: string): string {
  return /^[\w@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

async function verify(flags: VerifyFlags): Promise<void> {
  const configFile = flags.config ?? DEFAULT_CONFIG;
  const config = resolveConfig(configFile, flags);
  const workers = config.workers ?? defaultWorkers();
  if (workers < 1) throw dptError('DPT_ERR_USAGE', '--workers: verify compares one thread with worker threads; give --workers 1 or more');
  const faults = chaosOf(config, workers);
  const data = await loadTrainData(config.data, { baseDir: dirname(configFile) });
  const steps = flags.steps ?? 50;
  warnUnreachedFaults(faults, Math.min(steps, runLength(config, data.train.n).lastStep));
  if (!flags.quiet && !flags.json) process.stderr.write(`verify: ${configFile}, up to ${steps} steps, 1 thread vs ${workers} worker threads\n`);
  const report = await runVerify({
    config, data, workers, steps,
    log: (line) => process.stderr.write(line + '\n'),
  });
  process.stdout.write((flags.json ? JSON.stringify(report) : formatVerify(report)) + '\n');
  if (!report.agree) process.exitCode = 1;
}

/** The options that shape a run, shared by train and verify; each can also be a config field. */
function addRunOptions(cmd: Command, workersMin: number): Command {
  return cmd
    .option('--config <file>', 'training config (JSON)')
    .option('--epochs <n>', 'epochs (config: epochs)', wholeNumber('--epochs', 1))
    .option('--seed <s>', 'seed (config: seed)', wholeNumber('--seed', 0))
    .option('--max-steps <n>', 'stop after n steps (config: maxSteps)', wholeNumber('--max-steps', 0))
    .option('--workers <n>', `worker threads${workersMin === 0 ? ", 0 = the coordinator's own thread" : ''} (config: workers; default: one per core)`, wholeNumber('--workers', workersMin))
    .option('--step-timeout-ms <ms>', 'reassign micro-shards a worker has not answered within ms, 0 = never (config: stepTimeoutMs; default 30000)', wholeNumber('--step-timeout-ms', 0))
    .option('--kernels <kind>', `wasm (WebAssembly SIMD, default) or ts (the pure-TypeScript reference); env ${KERNELS_ENV}`, (v: string) => kernelKind(v))
    .option('--chaos <spec>', 'inject faults at fixed steps, e.g. "crash:worker=1,step=30;stall:worker=0,step=50,ms=2000" (config: chaos)', chaosSpec);
}

function kernelKind(value: string): string {
  try {
    return parseKernelKind(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function chaosSpec(value: string): string {
  try {
    parseChaos(value);
  } catch (err) {
    throw new InvalidArgumentError(`--chaos: ${(err as Error).message}`);
  }
  return value;
}

export function buildProgram(): Command {
  const program = new Command();
  // Set before the subcommands are added: they copy it. Errors then reach main() instead of exiting.
  program.exitOverride();
  // main() prints every error, commander's parse errors included, as one `dptrain: error [CODE]: ...` line.
  program.configureOutput({ outputError: () => {} });
  program.name('dptrain').description('Data-parallel neural-network training in TypeScript');
  // Every command computes with the kernels chosen here, before any model is built.
  program.hook('preAction', (_program, action) => {
    const kind = (action.opts() as { kernels?: string }).kernels;
    setupKernels(kind === undefined ? defaultKernelKind() : parseKernelKind(kind));
  });
  addRunOptions(program.command('train'), 0)
    .description('train a model described by a config file (default: examples/mnist-mlp.json)')
    .option('--checkpoint-every <n>', 'also checkpoint every n steps (config: checkpointEvery)', wholeNumber('--checkpoint-every', 0))
    .option('--out <dir>', 'run folder for config.json, metrics.jsonl, the model and checkpoints (missing or empty, unless --force)')
    .option('--resume <dir>', 'continue the run in <dir> from its last checkpoint')
    .option('--auto-resume', 'with --out: continue the run there if it holds a checkpoint of this config, else start it there')
    .option('--force', 'start a new run in an --out folder that is not empty, replacing its run files')
    .option('--json', 'print one JSON summary object as the last line of stdout')
    .addOption(new Option('--quiet', 'no progress output'))
    .option('--listen <host:port>', 'also accept network workers (dptrain worker, browser tabs) on this address; port 0 picks one')
    .option('--min-workers <m>', 'with --listen: start training once m workers (threads included) are connected (default 1)', wholeNumber('--min-workers', 1))
    .option('--token <token>', `with --listen: the shared token workers must give (visible in ps; prefer --token-file or $${TOKEN_ENV})`)
    .option('--token-file <file>', 'with --listen: read the shared token from a file')
    .option('--tls-cert <file>', 'with --listen: PEM certificate chain, serve https and wss')
    .option('--tls-key <file>', 'with --listen: PEM private key of --tls-cert')
    .option('--peer-timeout-ms <ms>', 'with --listen: disconnect a worker silent this long (no pong, no message; default 5000)', wholeNumber('--peer-timeout-ms', 100))
    .action(train);
  program.command('worker')
    .description('work for a coordinator started with `train --listen`: compute micro-shards on this machine\'s threads')
    .requiredOption('--connect <url>', 'the coordinator, ws://HOST:PORT or wss://HOST:PORT')
    .option('--threads <n>', 'worker threads (default 1)', wholeNumber('--threads', 1))
    .option('--token <token>', `the shared token (visible in ps; prefer --token-file or $${TOKEN_ENV})`)
    .option('--token-file <file>', 'read the shared token from a file')
    .option('--name <name>', 'a name for this worker in the coordinator\'s logs')
    .option('--data <file>', 'a local copy of the training set (.dptdata), verified by hash, instead of downloading it')
    .option('--cache <dir>', 'where downloaded datasets are kept (default: the dataset cache, $DPTRAIN_CACHE)')
    .option('--tls-ca <file>', 'trust this PEM certificate for wss:// (a self-signed coordinator)')
    .option('--kernels <kind>', `wasm (default) or ts; must match the coordinator's; env ${KERNELS_ENV}`, (v: string) => kernelKind(v))
    .action(async (flags: WorkerFlags) => {
      process.exitCode = await runWorkerCommand(flags, `dptrain ${packageVersion()}, node ${process.version}`);
    });
  addRunOptions(program.command('verify'), 1)
    .description('train the config in one thread and on N worker threads side by side; compare the weights after every step')
    .option('--steps <n>', 'steps to compare (default 50, at most the run)', wholeNumber('--steps', 1))
    .option('--json', 'print one JSON object')
    .addOption(new Option('--quiet', 'no header line'))
    .action(verify);
  program.command('conformance')
    .description('check the core against reference fixture files (../shared/fixtures format)')
    .argument('<dir>', 'folder of fixture JSON files')
    .option('--kernels <kind>', `wasm (default) or ts; env ${KERNELS_ENV}`, (v: string) => kernelKind(v))
    .option('--json', 'print one JSON object')
    .action((dir: string, flags: { json?: boolean }) => {
      const report = runConformance(dir);
      printConformance(report, flags.json === true);
      if (!report.passed) process.exitCode = 1;
    });
  program.command('export')
    .description('export a trained model file (a run folder\'s model.dptmodel) for PyTorch or TensorFlow.js')
    .argument('<model>', 'model file written by train')
    .requiredOption('--format <format>', 'torch (safetensors, nn.Sequential names) or tfjs (model.json + weights.bin)')
    .requiredOption('--out <path>', 'output file (torch) or folder (tfjs)')
    .action((model: string, flags: { format: string; out: string }) => {
      const warn = (line: string) => process.stderr.write(warningLine(line) + '\n');
      for (const f of exportModelFile(model, flags.format, flags.out, warn)) process.stdout.write(`wrote ${f}\n`);
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    let error: unknown = err;
    if (err instanceof CommanderError) {
      const outcome = fromCommanderError(err, program, argv);
      if ('exitCode' in outcome) {
        process.exitCode = outcome.exitCode;
        return;
      }
      error = outcome.error;
    }
    if (error instanceof DptrainError) {
      process.stderr.write(errorLine(error) + '\n');
      process.exitCode = exitCodeOf(error.code);
      return;
    }
    throw error;
  }
}

await main(process.argv);
