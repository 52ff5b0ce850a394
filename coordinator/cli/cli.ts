// The `dptrain` command line: wiring only (commander parses, the modules
// do the work). Every error ends in one `dptrain: error [CODE]: message`
// line (cli-errors.ts): usage errors exit 2, the others 1.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DptrainError, dptError } from '../../src/errors.js';
import { errorLine, exitCodeOf, fromCommanderError, warningLine } from './errors.js';
import { commandName, shellWord } from './command-name.js';
import { parseChaos } from '../../src/dispatch/chaos.js';
import { loadTrainData } from '../data/load.js';
import { chaosOf, defaultWorkers } from '../engines/choose.js';
import { createProgress } from './progress.js';
import { type ProgressSink } from '../run/trainer.js';
import { runLength } from '../run/stepper.js';
import { handleStopSignals, SIGNAL_EXIT_CODES, type StopSignals } from '../run/interrupt.js';
import { resolveConfig, runTrainRequest, warnUnreachedFaults, type RunOverrides, type TrainRequest } from '../run/train-run.js';
import { formatVerify, runVerify } from './commands/verify.js';
import { runConformance, printConformance } from './commands/conformance.js';
import { exportModelFile } from './commands/export.js';
import { runPredict, type PredictFlags } from './commands/predict.js';
import { TOKEN_ENV, VIEWER_TOKEN_ENV } from '../../node/net/secret.js';
import { runWorkerCommand, type WorkerFlags } from '../../worker/worker-command.js';
import { defaultKernelKind, KERNELS_ENV, parseKernelKind, setupKernels } from '../../node/kernels/setup.js';

export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DEFAULT_CONFIG = `${PACKAGE_ROOT}examples/mnist-mlp.json`;

function wholeNumber(name: string, min: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
      throw new InvalidArgumentError(`${name} must be a whole number >= ${min}, got "${value}"`);
    }
    return Number(value);
  };
}

function fraction(name: string) {
  return (value: string): number => {
    const v = Number(value.trim());
    if (value.trim() === '' || !(v >= 0 && v <= 1)) throw new InvalidArgumentError(`${name} must be a number from 0 to 1, got "${value}"`);
    return v;
  };
}

interface RunFlags extends RunOverrides {
  config?: string;
  quiet?: boolean;
  json?: boolean;
}

interface TrainFlags extends RunFlags, TrainRequest {
  config?: string;
}

interface VerifyFlags extends RunFlags {
  steps?: number;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function train(flags: TrainFlags): Promise<void> {
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
  const { quiet: _quiet, json: _json, ...request } = flags;
  const outcome = await runTrainRequest({ ...request, config: flags.config ?? (flags.resume === undefined ? DEFAULT_CONFIG : undefined) }, {
    progress, stopSignal: stop.signal,
    notice: (line) => process.stderr.write(line + '\n'),
    warn: (line) => process.stderr.write(warningLine(line) + '\n'),
  });
  if ('interrupted' in outcome) {
    const name = stop.received() ?? 'SIGTERM';
    process.stderr.write(`dptrain: interrupted at step ${outcome.step}; resume with: ${commandName()} train --resume ${shellWord(outcome.outDir)}\n`);
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
      (summary.topology === undefined ? '' : `topology: ${summary.topology.ran} (${summary.topology.wire}): ${summary.topology.reason}\n`) +
      summary.workerStats.filter((w) => w.kind !== 'thread').map((w) =>
        `worker ${w.id} (${w.kind} ${w.host}${w.name === undefined ? '' : ` "${w.name}"`}, ${w.threads} thread${w.threads === 1 ? '' : 's'}): ` +
        `${w.microShards} micro-shards, ${Math.round(w.samplesPerSec)} samples/s, ${w.faults} fault${w.faults === 1 ? '' : 's'}\n`).join('') +
      `wrote ${summary.outDir}/{config.json,metrics.jsonl,model.dptmodel,checkpoint.msgpack}\n`,
    );
  }
}

async function verify(flags: VerifyFlags): Promise<void> {
  const configFile = flags.config ?? DEFAULT_CONFIG;
  const config = resolveConfig(configFile, flags);
  const workers = config.workers ?? defaultWorkers();
  if (workers < 1) throw dptError('DPT_ERR_USAGE', '--workers: verify compares one thread with worker threads; give --workers 1 or more');
  const faults = chaosOf(config, workers);
  const data = await loadTrainData(config.data, { baseDir: dirname(configFile) });
  const steps = flags.steps ?? 50;
  warnUnreachedFaults(faults, Math.min(steps, runLength(config, data.train.n).lastStep), (line) => process.stderr.write(warningLine(line) + '\n'));
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
    .option('--chaos <spec>', 'inject faults at fixed steps, e.g. "crash:worker=1,step=30;stall:worker=0,step=50,ms=2000" (config: chaos)', chaosSpec)
    .option('--grad-wire <wire>', 'f32, or bf16: every node of the reduction tree rounded to bfloat16 on every engine, half the bytes on the wire (config: gradWire; default f32)', oneOf('--grad-wire', ['f32', 'bf16']));
}

function oneOf(option: string, values: readonly string[]): (value: string) => string {
  return (value) => {
    if (!values.includes(value)) throw new InvalidArgumentError(`${option}: expected one of ${values.join(', ')}, got "${value}"`);
    return value;
  };
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
    const kind = action.opts<{ kernels?: string }>().kernels;
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
    .option('--viewer-token <token>', `with --listen: a read-only token for the dashboard, /live and /metrics, never a worker's (visible in ps; prefer --viewer-token-file or $${VIEWER_TOKEN_ENV}; off loopback, one is made when none is given)`)
    .option('--viewer-token-file <file>', 'with --listen: read the viewer token from a file')
    .option('--public-dashboard', 'with --listen: let anyone who reaches the port watch the dashboard, /live and /metrics (read-only), with no credential')
    .option('--tls-cert <file>', 'with --listen: PEM certificate chain, serve https and wss')
    .option('--tls-key <file>', 'with --listen: PEM private key of --tls-cert')
    .option('--peer-timeout-ms <ms>', 'with --listen: disconnect a worker silent this long (no pong, no message; default 5000)', wholeNumber('--peer-timeout-ms', 100))
    .option('--verify-fraction <f>', 'with --listen: recompute this fraction (0 to 1) of the ranges that processes and tabs answer on another worker and compare the bits; a worker that differs is quarantined (default 0)', fraction('--verify-fraction'))
    .option('--allow-origin <url>', 'with --listen: also let web pages of this origin open a WebSocket (repeatable; default: only the coordinator\'s own pages)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--max-connections-per-address <n>', 'with --listen: WebSocket and dashboard connections at once from one address (default 32)', wholeNumber('--max-connections-per-address', 1))
    .option('--topology <t>', 'with --listen: auto (workers started with --peer-listen reduce among themselves), star (every partial sum to the coordinator) or collective (config: topology; default auto)', oneOf('--topology', ['auto', 'star', 'collective']))
    .action(train);
  program.command('worker')
    .description('work for a coordinator started with `train --listen`: compute micro-shards on this machine\'s threads')
    .requiredOption('--connect <url>', 'the coordinator, ws://HOST:PORT or wss://HOST:PORT')
    .option('--threads <n>', 'threads to compute on (default: one per core; with 1, on the main thread)', wholeNumber('--threads', 1))
    .option('--token <token>', `the shared token (visible in ps; prefer --token-file or $${TOKEN_ENV})`)
    .option('--token-file <file>', 'read the shared token from a file')
    .option('--name <name>', 'a name for this worker in the coordinator\'s logs')
    .option('--data <file>', 'a local copy of the training set (.dptdata), verified by hash, instead of downloading it')
    .option('--cache <dir>', 'where downloaded datasets are kept (default: the dataset cache, $DPTRAIN_CACHE)')
    .option('--tls-ca <file>', 'trust this PEM certificate for wss:// (a self-signed coordinator)')
    .option('--health-listen <host:port>', 'serve GET /healthz (alive) and /readyz (connected, ready) on this address, for container probes')
    .option('--give-up-after <seconds>', 'exit 1 (DPT_ERR_CONNECT) if no coordinator welcomed this worker within this many seconds; 0 = keep trying (default 300)', wholeNumber('--give-up-after', 0))
    .option('--peer-listen <host:port>', 'join the collective: take peer links from the other workers on this address (port 0 picks one); the workers then reduce among themselves')
    .option('--advertise <host:port>', 'with --peer-listen: the address peers reach this worker at, when it is not the listen address (NAT, containers, pod IPs)')
    .option('--peer-tls-cert <file>', 'with --peer-listen: PEM certificate chain of the peer port (a run over wss:// needs it; peers trust it with --tls-ca)')
    .option('--peer-tls-key <file>', 'with --peer-listen: PEM private key of --peer-tls-cert')
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
    .description('check the core against reference fixture files (the format of test/fixtures/reference/README.md)')
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
  program.command('predict')
    .description('predict with a trained model file: per row of a CSV file, the class (by name) and the class probabilities')
    .argument('<model>', 'model file written by train (model.dptmodel)')
    .requiredOption('--input <file>', 'CSV file with the model\'s feature columns (by name; an MNIST model: 784 pixel columns, grey levels 0-255)')
    .option('--label <column>', 'score the predictions against this column: accuracy, macro-F1 and loss on stderr')
    .option('--out <file>', 'write the predictions to this file (default: stdout)')
    .option('--json', 'one JSON object per row instead of CSV')
    .option('--kernels <kind>', `wasm (default) or ts; env ${KERNELS_ENV}`, (v: string) => kernelKind(v))
    .action(async (model: string, flags: PredictFlags) => {
      const outcome = await runPredict(model, flags);
      if (flags.out === undefined) process.stdout.write(outcome.text);
      if (outcome.score !== null) process.stderr.write(outcome.score + '\n');
      if (flags.out !== undefined) process.stdout.write(`wrote ${flags.out} (${outcome.rows} rows)\n`);
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
