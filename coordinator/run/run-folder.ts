// The run folder of `dptrain train` (--out DIR): whether a run may start in
// it or continues the one in it, decided before anything runs so that no
// earlier run is overwritten by accident, and the files of a run:
//   config.json         the resolved config (less chaos)
//   metrics.jsonl       one line per epoch (and one for an epoch cut short by maxSteps)
//   model.dptmodel      the trained model
//   checkpoint.msgpack  everything needed to resume
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { dptError } from '../../src/errors.js';
import { CHECKPOINT_FILE, readCheckpoint } from './checkpoint.js';
import { CLI_OPTION_NAMES, type OptionNames } from './option-names.js';
import type { TrainConfig } from './config.js';
import { ensureFolder, outputError, statOrNull, TEMP_FILE_RE, writeOutputFile } from './output-paths.js';

export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
export const MODEL_FILE = 'model.dptmodel';
const RUN_FILES = [CONFIG_FILE, METRICS_FILE, MODEL_FILE, CHECKPOINT_FILE];

/** The run folder when --out is not given: `runs/<config>-<time>`, with a suffix if a run of the same second has it. */
export function defaultRunDir(configFile: string): string {
  const time = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const base = `runs/${basename(configFile).replace(/\.json$/, '')}-${time}`;
  let dir = base;
  for (let i = 2; statOrNull(dir) !== null; i++) dir = `${base}-${i}`;
  return dir;
}

/** `--resume DIR`: refused before anything else unless DIR holds a checkpoint. */
export function requireCheckpoint(dir: string, n: OptionNames = CLI_OPTION_NAMES): void {
  const checkpoint = join(dir, CHECKPOINT_FILE);
  if (statOrNull(checkpoint) === null) {
    throw dptError('DPT_ERR_CHECKPOINT', `${n.set('resume', dir)}: no checkpoint here (expected ${checkpoint}); pass the ${n.name('out')} folder of an earlier run`);
  }
}

export interface OutFolderRequest {
  dir: string;
  /** With --auto-resume: continue the run in dir if it is one of this config. */
  autoResume: boolean;
  /** Start a new run even where files are (replacing a run's files). */
  force: boolean;
  /** The hash a checkpoint of this config carries (hashConfig(trajectoryConfig(config))). */
  configHash: string;
  /** How messages name the options (default: the command line's flags). */
  names?: OptionNames;
}

/** The entries of dir that count: everything but temporary files a killed writer left. */
function contentsOf(dir: string): string[] {
  return readdirSync(dir).filter((name) => !TEMP_FILE_RE.test(name)).sort();
}

function listed(names: string[]): string {
  return names.length <= 4 ? names.join(', ') : `${names.slice(0, 4).join(', ')} and ${names.length - 4} more`;
}

/**
 * `--out DIR`: whether train starts a new run in DIR, replaces what is there
 * (only with `force`) or (with --auto-resume) continues the run there,
 * decided before anything runs. A new run only starts in a folder that is
 * missing or empty, or with `force`: earlier work is never overwritten by
 * accident.
 */
export function planOutFolder(req: OutFolderRequest): 'new' | 'replace' | 'resume' {
  const { dir } = req;
  const n = req.names ?? CLI_OPTION_NAMES;
  const st = statOrNull(dir);
  if (st === null) return 'new';
  if (!st.isDirectory()) throw dptError('DPT_ERR_OUTPUT', `${n.set('out', dir)}: cannot write the run folder: it is a file, not a folder`);
  if (req.autoResume && statOrNull(join(dir, CHECKPOINT_FILE)) !== null) {
    let sameConfig: boolean;
    try {
      sameConfig = readCheckpoint(dir).configHash === req.configHash;
    } catch (err) {
      if (req.force) return 'replace';
      throw err;
    }
    if (sameConfig) return 'resume';
    if (req.force) return 'replace';
    throw dptError('DPT_ERR_CHECKPOINT', `${n.set('out', dir)} (${n.name('autoResume')}): the checkpoint here was written by another config; ` +
      `give that config, add ${n.set('force')} to start this one over in ${dir}, or give another folder`);
  }
  const contents = contentsOf(dir);
  if (contents.length === 0) return 'new';
  if (req.force) return 'replace';
  const isRun = contents.includes(CHECKPOINT_FILE);
  throw dptError('DPT_ERR_OUTPUT', `${n.set('out', dir)}: ${isRun ? 'holds a run' : 'is not empty'} (${listed(contents)}); ` +
    (isRun ? `continue that run with ${n.set('resume', dir)}, ` : '') +
    `add ${n.set('force')} to start a new run in it (replacing ${RUN_FILES.join(', ')}), or give another folder`);
}

/** Creates the folder of a new run, or empties a forced one of an earlier run's files. */
export function startRunFolder(dir: string): void {
  ensureFolder(dir, 'the run folder');
  for (const name of readdirSync(dir)) {
    if (!RUN_FILES.includes(name) && !TEMP_FILE_RE.test(name)) continue;
    try {
      rmSync(join(dir, name), { force: true });
    } catch (err) {
      throw outputError(join(dir, name), 'the run folder (replacing an earlier run\'s file)', err);
    }
  }
}

/** Writes DIR/config.json: the resolved config, less chaos (injected faults belong to one invocation). */
export function writeRunConfig(dir: string, config: TrainConfig): void {
  const { chaos: _chaos, ...saved } = config;
  writeOutputFile(join(dir, CONFIG_FILE), new TextEncoder().encode(JSON.stringify(saved, null, 2) + '\n'), 'the run config');
}

export function hasRunConfig(dir: string): boolean {
  return statOrNull(join(dir, CONFIG_FILE)) !== null;
}

/**
 * On resume from a checkpoint after `step` steps, of a run that ends at
 * `lastStep`: keeps the metrics lines of the epochs completed by then and
 * drops the rest (the line of an epoch cut short by an earlier maxSteps,
 * unless this run ends there too; a line appended after the last checkpoint
 * by a killed run), so the resumed run writes exactly what an uninterrupted
 * one would.
 */
export function keepCompletedEpochMetrics(dir: string, step: number, stepsPerEpoch: number, lastStep: number): void {
  const file = join(dir, METRICS_FILE);
  if (statOrNull(file) === null) return;
  const kept = readFileSync(file, 'utf8').split('\n').filter((line) => {
    if (line.trim() === '') return false;
    let entry: { step?: unknown };
    try {
      entry = JSON.parse(line) as { step?: unknown };
    } catch {
      return false; // cut short by a kill mid-write
    }
    return typeof entry.step === 'number' && entry.step <= step && (entry.step % stepsPerEpoch === 0 || entry.step === lastStep);
  });
  writeOutputFile(file, new TextEncoder().encode(kept.map((l) => l + '\n').join('')), 'the metrics file');
}
