// The `dptrain` command line: wiring only (commander parses, the modules
// do the work). Errors of ours print their code and message and exit 1;
// usage errors exit 2.
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DptrainError } from '../src/errors.js';
import { parseConfig, readConfigFile, type TrainConfig } from './config.js';
import { loadTrainData } from './data/load.js';
import { createLocalEngine } from './engine.js';
import { createProgress } from './progress.js';
import { runTraining } from './trainer.js';
import { getLoss } from '../src/losses/index.js';
import { runConformance, printConformance } from './conformance.js';
import { exportModelFile } from './export-command.js';

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

interface TrainFlags {
  config?: string;
  epochs?: number;
  seed?: number;
  out?: string;
  json?: boolean;
  resume?: string;
  maxSteps?: number;
  quiet?: boolean;
}

/** The config with the command line's overrides applied (the command line wins). */
function resolveConfig(file: string, flags: TrainFlags): TrainConfig {
  const base = readConfigFile(file);
  const merged = { ...base } as Record<string, unknown>;
  if (flags.epochs !== undefined) merged.epochs = flags.epochs;
  if (flags.seed !== undefined) merged.seed = flags.seed;
  if (flags.maxSteps !== undefined) merged.maxSteps = flags.maxSteps;
  return parseConfig(merged, `${file} (with command-line overrides)`);
}

function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
}

async function train(flags: TrainFlags): Promise<void> {
  let configFile = flags.config ?? DEFAULT_CONFIG;
  if (flags.resume !== undefined && flags.config === undefined) configFile = `${flags.resume}/config.json`;
  const config = resolveConfig(configFile, flags);
  const outDir = flags.resume ?? flags.out ?? `runs/${configFile.replace(/^.*\//, '').replace(/\.json$/, '')}-${timestamp()}`;
  const data = await loadTrainData(config.data, { baseDir: dirname(configFile) });
  const loss = getLoss(config.loss);
  const summary = await runTraining({
    config, data, outDir, resume: flags.resume !== undefined,
    createEngine: async (model, d, maxBatch) => createLocalEngine(model, loss, d.train, config.seed, maxBatch),
    progress: createProgress({ quiet: flags.quiet }),
  });
  if (flags.json) {
    process.stdout.write(JSON.stringify(summary) + '\n');
  } else {
    const t = summary.test;
    process.stdout.write(
      `done: ${summary.steps} steps (${summary.epochs.toFixed(2)} epochs) in ${summary.wallSeconds.toFixed(1)} s, ` +
      `${Math.round(summary.samplesPerSec)} samples/s\n` +
      `test: loss ${t.loss.toFixed(4)}` + (t.accuracy !== null ? `, accuracy ${(100 * t.accuracy).toFixed(2)}%, macro-F1 ${t.f1Macro!.toFixed(4)}` : '') + '\n' +
      `weights sha256 ${summary.weightsSha256}\n` +
      `wrote ${summary.outDir}/{config.json,metrics.jsonl,model.dptmodel,checkpoint.msgpack}\n`,
    );
  }
}

export function buildProgram(): Command {
  const program = new Command();
  // Set before the subcommands are added: they copy it. Errors then reach main() instead of exiting.
  program.exitOverride();
  program.name('dptrain').description('Data-parallel neural-network training in TypeScript').showHelpAfterError();
  program.command('train')
    .description('train a model described by a config file (default: examples/mnist-mlp.json)')
    .option('--config <file>', 'training config (JSON)')
    .option('--epochs <n>', 'epochs (overrides the config)', wholeNumber('--epochs', 1))
    .option('--seed <s>', 'seed (overrides the config)', wholeNumber('--seed', 0))
    .option('--max-steps <n>', 'stop after n steps', wholeNumber('--max-steps', 0))
    .option('--out <dir>', 'run folder for config.json, metrics.jsonl, the model and checkpoints')
    .option('--resume <dir>', 'continue the run in <dir> from its last checkpoint')
    .option('--json', 'print one JSON summary object as the last line of stdout')
    .addOption(new Option('--quiet', 'no progress output'))
    .action(train);
  program.command('conformance')
    .description('check the core against reference fixture files (../shared/fixtures format)')
    .argument('<dir>', 'folder of fixture JSON files')
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
      for (const f of exportModelFile(model, flags.format, flags.out)) process.stdout.write(`wrote ${f}\n`);
    });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof DptrainError) {
      process.stderr.write(`dptrain: error [${err.code}]: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    const code = (err as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      // commander has printed its message already.
      process.exitCode = code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version' ? 0 : 2;
      return;
    }
    throw err;
  }
}

await main(process.argv);
