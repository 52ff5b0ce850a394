// One training run from its options, the one implementation behind
// `dptrain train` (cli.ts) and the library's train() (api/train.ts):
//   1. the options that go together, checked (usage errors name the flags);
//   2. the config: a file, or an object, with the overrides applied
//      (epochs, seed, workers, ...: the command line wins over the file)
//      and its CSV paths made absolute; with --resume and no config, the
//      run folder's config.json;
//   3. the run folder's plan (new, replace, resume), the data (a bad CSV is
//      refused before the engine says anything), the engine (threads, the
//      coordinator's own thread, network workers with --listen);
//   4. runTraining, which saves the model with what inference needs (the
//      data's feature names, scaling and class names).
// Printing, signals and exit codes stay with the callers.
import { dirname, join, resolve } from 'node:path';
import { dptError } from '../../src/errors.js';
import { hashConfig } from './checkpoint.js';
import type { ClusterOptions } from '../serve/cluster.js';
import { viewerPolicy } from '../serve/viewer-access.js';
import { parseConfig, readConfigFile, type TrainConfig } from './config.js';
import { inferenceInfoOf, loadTrainData } from '../data/load.js';
import type { Fault } from '../../src/dispatch/chaos.js';
import { chaosOf, chooseEngine, defaultWorkers } from '../engines/choose.js';
import { parseListen } from '../../node/net/address.js';
import { resolveToken, resolveViewerToken, type TokenSources, type ViewerTokenSources } from '../../node/net/secret.js';
import { parseAllowedOrigin } from '../../node/net/origin.js';
import { RunStatus, teeProgress } from '../serve/live/run-status.js';
import { runInfo } from '../serve/live/run-info.js';
import { activeKernelKind } from '../../src/tensor/setup.js';
import { CONFIG_FILE, defaultRunDir, planOutFolder, requireCheckpoint } from './run-folder.js';
import { runTraining, trajectoryConfig, type InterruptedRun, type ProgressSink, type RunSummary } from './trainer.js';
import { runLength } from './stepper.js';
import { CLI_OPTION_NAMES, type OptionNames } from './option-names.js';

/** The options that shape a run, each also a config field (the option wins). */
export interface RunOverrides {
  epochs?: number;
  seed?: number;
  maxSteps?: number;
  checkpointEvery?: number;
  workers?: number;
  stepTimeoutMs?: number;
  chaos?: string;
  gradWire?: 'f32' | 'bf16';
  topology?: 'auto' | 'star' | 'collective';
}

/** `dptrain train`'s options by their camelCase names (`--max-steps` is maxSteps). */
export interface TrainRequest extends RunOverrides, TokenSources, ViewerTokenSources {
  /** A config file, or the config as a value (checked as a file's would be); default: the run folder's with resume. */
  config?: string | object;
  /** Where relative paths of a config given as a value resolve (default: the working directory). */
  baseDir?: string;
  out?: string;
  resume?: string;
  autoResume?: boolean;
  force?: boolean;
  listen?: string;
  minWorkers?: number;
  tlsCert?: string;
  tlsKey?: string;
  peerTimeoutMs?: number;
  /** With listen: the fraction (0 to 1) of the ranges processes and tabs answer that another worker recomputes. */
  verifyFraction?: number;
  /** With listen: origins whose pages may open a WebSocket besides the coordinator's own. */
  allowOrigin?: string[];
  maxConnectionsPerAddress?: number;
  /** With listen: anyone who reaches the port may watch the dashboard, /live and /metrics (read-only). */
  publicDashboard?: boolean;
}

export interface TrainHooks {
  progress: ProgressSink;
  /** A stop request: the run checkpoints between steps and returns as interrupted. */
  stopSignal?: AbortSignal;
  /** What the run does that the user did not ask for in so many words (--force replacing files). */
  notice(line: string): void;
  /** A warning that does not stop the run (a --chaos fault the run never reaches). */
  warn(line: string): void;
  /** How errors name options: the command line's flags (default) or the library's option names. */
  names?: OptionNames;
}

const OVERRIDES: (keyof RunOverrides & keyof TrainConfig)[] = ['epochs', 'seed', 'maxSteps', 'checkpointEvery', 'workers', 'stepTimeoutMs', 'chaos', 'gradWire', 'topology'];

/**
 * The config with the overrides applied (they win); `given` is a file or a
 * value. Its CSV paths become absolute (against the file's folder, or
 * baseDir for a value, default the working directory): the run folder's
 * config.json, which --resume reads, lives elsewhere. A relative file path
 * resolves against baseDir when given.
 */
export function resolveConfig(given: string | object, overrides: RunOverrides, baseDir?: string): TrainConfig {
  // A config file's relative path resolves against baseDir too, when given.
  const config = typeof given === 'string' && baseDir !== undefined ? resolve(baseDir, given) : given;
  const base = typeof config === 'string' ? readConfigFile(config) : config;
  const merged = { ...base } as Record<string, unknown>;
  for (const field of OVERRIDES) if (overrides[field] !== undefined) merged[field] = overrides[field];
  const overridden = OVERRIDES.filter((field) => overrides[field] !== undefined);
  const where = typeof config === 'string' ? config : 'config';
  const parsed = parseConfig(merged, overridden.length === 0 ? where : `${where} (with ${overridden.join(', ')} overridden)`);
  if (parsed.data.type !== 'csv') return parsed;
  const from = typeof config === 'string' ? dirname(config) : baseDir ?? process.cwd();
  const data = { ...parsed.data, train: resolve(from, parsed.data.train) };
  if (data.test !== undefined) data.test = resolve(from, data.test);
  return { ...parsed, data };
}

/** Warns about --chaos faults the run never reaches (they would never fire). */
export function warnUnreachedFaults(faults: Fault[], lastStep: number, warn: (line: string) => void): void {
  for (const f of faults) {
    if (f.step > lastStep) warn(`--chaos: the ${f.kind} fault at step ${f.step} will not fire: the run ends at step ${lastStep}`);
  }
}

/** The combinations of run-folder options that mean nothing, refused as usage errors. */
function checkRunFolderOptions(req: TrainRequest, n: OptionNames): void {
  const usage = (message: string) => dptError('DPT_ERR_USAGE', message);
  if (req.resume !== undefined) {
    if (req.out !== undefined) throw usage(`${n.name('resume')} and ${n.name('out')}: give one (${n.name('resume')} continues the run in its own folder)`);
    if (req.autoResume) throw usage(`${n.name('resume')} and ${n.name('autoResume')}: give one (${n.name('autoResume')} goes with ${n.name('out')})`);
    if (req.force) throw usage(`${n.name('force')} starts a new run; it does not go with ${n.name('resume')}`);
  }
  if (req.autoResume && req.out === undefined) throw usage(`${n.name('autoResume')} needs ${n.set('out', 'DIR')}: the folder to continue the run in, or to start it in`);
}

/** The cluster options of `--listen`, checked; undefined without it. */
export function clusterOptions(req: TrainRequest, n: OptionNames = CLI_OPTION_NAMES): ClusterOptions | undefined {
  if (req.listen === undefined) {
    const stray = (['minWorkers', 'token', 'tokenFile', 'tlsCert', 'tlsKey', 'peerTimeoutMs', 'verifyFraction', 'allowOrigin', 'maxConnectionsPerAddress',
      'viewerToken', 'viewerTokenFile', 'publicDashboard'] as const)
      .find((f) => req[f] !== undefined);
    if (stray !== undefined) throw dptError('DPT_ERR_USAGE', `${n.name(stray)} needs ${n.set('listen', 'HOST:PORT')}`);
    return undefined;
  }
  if ((req.tlsCert === undefined) !== (req.tlsKey === undefined)) throw dptError('DPT_ERR_USAGE', `${n.name('tlsCert')} and ${n.name('tlsKey')} go together`);
  const listen = parseListen(req.listen, n.name('listen'));
  const token = resolveToken(req, process.env, n.name);
  return {
    listen,
    minWorkers: req.minWorkers ?? 1,
    token,
    viewer: viewerPolicy({ listenHost: listen.host, token, viewerToken: resolveViewerToken(req, process.env, n.name), publicDashboard: req.publicDashboard === true }),
    peerTimeoutMs: req.peerTimeoutMs ?? 5000,
    verifyFraction: req.verifyFraction ?? 0,
    allowOrigins: (req.allowOrigin ?? []).map((origin) => parseAllowedOrigin(origin, n.name('allowOrigin'))),
    maxConnectionsPerAddress: req.maxConnectionsPerAddress ?? 32,
    ...(req.tlsCert === undefined ? {} : { tls: { certFile: req.tlsCert, keyFile: req.tlsKey! } }),
  };
}

export async function runTrainRequest(req: TrainRequest, hooks: TrainHooks): Promise<RunSummary | InterruptedRun> {
  const names = hooks.names ?? CLI_OPTION_NAMES;
  checkRunFolderOptions(req, names);
  let config = req.config;
  if (req.resume !== undefined) {
    requireCheckpoint(req.resume, names);
    config ??= join(req.resume, CONFIG_FILE);
  }
  if (config === undefined) throw dptError('DPT_ERR_USAGE', `no config: give ${names.name('config')} (a file or an object), or ${names.set('resume', 'DIR')}`);
  const resolved = resolveConfig(config, req, req.baseDir);
  const cluster = clusterOptions(req, names);
  let progress = hooks.progress;
  let stepsPerEpoch = 1;
  if (cluster !== undefined) {
    // The dashboard sees what the terminal sees.
    cluster.status = new RunStatus(runInfo(resolved, typeof config === 'string' ? config : 'config', {
      kernels: activeKernelKind(), verifyFraction: cluster.verifyFraction, tokenRequired: cluster.token !== '',
    }));
    progress = teeProgress(progress, cluster.status, () => stepsPerEpoch);
  }
  // A coordinator that listens computes nothing itself unless --workers says so; otherwise, without
  // a worker count, threads or the coordinator's thread, whichever is faster (auto-engine.ts).
  const workers = resolved.workers ?? (cluster === undefined ? 'auto' : 0);
  const faults = chaosOf(resolved, workers === 'auto' ? defaultWorkers() : workers, cluster !== undefined, names.name('chaos'));
  const outDir = req.resume ?? req.out ?? defaultRunDir(typeof config === 'string' ? config : 'train');
  const plan = req.resume !== undefined ? 'resume' : planOutFolder({
    dir: outDir, autoResume: req.autoResume === true, force: req.force === true,
    configHash: hashConfig(trajectoryConfig(resolved)), names,
  });
  if (plan === 'replace') hooks.notice(`dptrain: ${names.name('force')}: starting a new run in ${outDir}, replacing the run files there`);
  // The data first: a bad CSV is refused before anything is said about the engine.
  const loaded = await loadTrainData(resolved.data);
  // After a stop request the engine is closed under its step; its complaints about that are noise.
  const engine = chooseEngine(resolved, workers, (line) => { if (hooks.stopSignal?.aborted !== true) progress.note?.(line); }, cluster);
  const data = engine.prepare(loaded);
  const length = runLength(resolved, data.train.n);
  warnUnreachedFaults(faults, length.lastStep, hooks.warn);
  stepsPerEpoch = length.stepsPerEpoch;
  return runTraining({
    config: resolved, data, outDir, resume: plan === 'resume',
    allocParams: engine.allocParams, createEngine: engine.create,
    progress, stopSignal: hooks.stopSignal, inference: inferenceInfoOf(resolved.data, loaded),
  });
}
