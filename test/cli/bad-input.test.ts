// Careless input to every command, in real `dptrain` processes (issue 12):
// each case must end in exit code 2 (usage) or 1 (anything else) with one
// `dptrain: error [CODE]: ...` line naming the cause, no stack trace, no help
// text unless asked, and the folder it ran in exactly as it was (nothing
// half-written, no temporary file, no earlier work overwritten).
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson, type RunResult } from '../helpers/cli.js';

/** Every file and folder below dir with its size and modification time: what "left as it was" compares. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      out[p] = st.isDirectory() ? 'dir' : `${st.size} ${st.mtimeMs}`;
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** The run ended with exit code `exit` and the line `dptrain: error [CODE]: ...` matching `message`, and nothing else went wrong. */
function expectError(r: RunResult, exit: 1 | 2, code: string, message: RegExp | string): void {
  const where = `stderr:\n${r.stderr}`;
  expect(r.code, where).toBe(exit);
  expect(r.stderr, where).not.toMatch(/^\s+at /m); // no stack trace
  expect(r.stderr, where).not.toMatch(/^Usage:/m); // no help nobody asked for
  expect(r.stdout, where).toBe('');
  const lines = r.stderr.trimEnd().split('\n').filter((l) => l.startsWith('dptrain: error'));
  expect(lines, where).toHaveLength(1);
  expect(lines[0].startsWith(`dptrain: error [${code}]: `), where).toBe(true);
  if (typeof message === 'string') expect(lines[0], where).toContain(message);
  else expect(lines[0], where).toMatch(message);
}

describe('every command refuses bad input with one coded line and leaves everything as it was', () => {
  const dir = tempDir();
  const config = writeJson(dir, 'small.json', smallMlpConfig({ maxSteps: 2 }));
  const run = join(dir, 'run');
  const model = join(run, 'model.dptmodel');
  const aFile = join(dir, 'a-file');
  const aFolder = join(dir, 'a-folder');
  const otherFiles = join(dir, 'other-files');

  beforeAll(async () => {
    const r = await runCli(['train', '--config', config, '--out', run, '--workers', '0', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    writeFileSync(aFile, 'not a folder\n');
    mkdirSync(aFolder);
    mkdirSync(otherFiles);
    writeFileSync(join(otherFiles, 'notes.txt'), 'mine\n');
  });

  // [what, args, exit code, error code, the message (or a part of it), environment]
  const cases: [string, () => string[], 1 | 2, string, RegExp | string, Record<string, string>?][] = [
    ['an unknown command', () => ['trian'], 2, 'DPT_ERR_USAGE', /unknown command 'trian' \(Did you mean train\?\); see dptrain --help/],
    ['an unknown option', () => ['train', '--config', config, '--learning-rate', '0.1'], 2, 'DPT_ERR_USAGE', "unknown option '--learning-rate'; see dptrain train --help"],
    ['an argument train does not take', () => ['train', config], 2, 'DPT_ERR_USAGE', /too many arguments for 'train'/],
    ['a bad option value', () => ['train', '--config', config, '--epochs', 'two'], 2, 'DPT_ERR_USAGE', '--epochs must be a whole number >= 1, got "two"'],
    ['verify --workers 0', () => ['verify', '--config', config, '--workers', '0'], 2, 'DPT_ERR_USAGE', '--workers must be a whole number >= 1, got "0"'],
    ['a bad --kernels', () => ['train', '--config', config, '--kernels', 'gpu'], 2, 'DPT_ERR_USAGE', "--kernels must be 'wasm' or 'ts', got 'gpu'"],
    ['a bad DPTRAIN_KERNELS', () => ['train', '--config', config, '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', "$DPTRAIN_KERNELS must be 'wasm' or 'ts', got 'gpu'", { DPTRAIN_KERNELS: 'gpu' }],
    ['a bad --chaos spec', () => ['train', '--config', config, '--chaos', 'explode:worker=0,step=1'], 2, 'DPT_ERR_USAGE', '--chaos: "explode:worker=0,step=1": unknown fault kind "explode"'],
    ['--chaos naming a worker slot that does not exist', () => ['train', '--config', config, '--workers', '2', '--chaos', 'crash:worker=5,step=1', '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', 'crash names worker=5, but there are only 2 worker slots'],
    ['--chaos with --workers 0', () => ['train', '--config', config, '--workers', '0', '--chaos', 'crash:worker=0,step=1', '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', 'faults are injected into worker threads: use --workers 1 or more'],
    ['--chaos corrupting an element past the gradient', () => ['train', '--config', config, '--workers', '1', '--chaos', 'corrupt:worker=0,step=1,index=99999999', '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', '--chaos: corrupt index=99999999 is past the gradient vector'],
    ['worker --health-listen without a port', () => ['worker', '--connect', 'ws://127.0.0.1:1', '--health-listen', 'localhost'], 2, 'DPT_ERR_USAGE', '--health-listen must be HOST:PORT (e.g. 0.0.0.0:7070, 127.0.0.1:0, [::1]:7070), got "localhost"'],
    ['--resume with --out', () => ['train', '--resume', run, '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', '--resume and --out: give one'],
    ['--auto-resume without --out', () => ['train', '--config', config, '--auto-resume'], 2, 'DPT_ERR_USAGE', '--auto-resume needs --out DIR'],
    ['export --format onnx', () => ['export', model, '--format', 'onnx', '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', '--format must be one of torch, tfjs, got "onnx"'],
    ['export without --format', () => ['export', model, '--out', join(dir, 'x')], 2, 'DPT_ERR_USAGE', "required option '--format <format>' not specified; see dptrain export --help"],
    ['conformance without its folder', () => ['conformance'], 2, 'DPT_ERR_USAGE', "missing required argument 'dir'"],

    ['train --out an existing file', () => ['train', '--config', config, '--out', aFile], 1, 'DPT_ERR_OUTPUT', `--out ${aFile}: cannot write the run folder: it is a file, not a folder`],
    ['train --out below a file', () => ['train', '--config', config, '--out', join(aFile, 'run')], 1, 'DPT_ERR_OUTPUT', `${join(aFile, 'run')}: cannot write the run folder: a part of the path is a file, not a folder`],
    ['train --out a folder holding a run', () => ['train', '--config', config, '--out', run], 1, 'DPT_ERR_OUTPUT', `--out ${run}: holds a run (checkpoint.msgpack, config.json, metrics.jsonl, model.dptmodel); continue that run with --resume ${run}, add --force`],
    ['train --out a folder holding other files', () => ['train', '--config', config, '--out', otherFiles], 1, 'DPT_ERR_OUTPUT', `--out ${otherFiles}: is not empty (notes.txt); add --force`],
    ['export --format torch --out a missing folder', () => ['export', model, '--format', 'torch', '--out', join(dir, 'missing', 'w.safetensors')], 1, 'DPT_ERR_OUTPUT', `${join(dir, 'missing', 'w.safetensors')}: cannot write the safetensors export: the folder ${join(dir, 'missing')} does not exist`],
    ['export --format torch --out an existing folder', () => ['export', model, '--format', 'torch', '--out', aFolder], 1, 'DPT_ERR_OUTPUT', `${aFolder}: cannot write the safetensors export: it is a folder; give a file path`],
    ['export --format tfjs --out an existing file', () => ['export', model, '--format', 'tfjs', '--out', aFile], 1, 'DPT_ERR_OUTPUT', `${aFile}: cannot write the TF.js model folder: it is a file, not a folder`],

    ['export of a file that is not a model', () => ['export', config, '--format', 'torch', '--out', join(dir, 'x.safetensors')], 1, 'DPT_ERR_MODEL_FILE', `${config}: not a dptrain model file`],
    ['export of a run folder', () => ['export', run, '--format', 'torch', '--out', join(dir, 'x.safetensors')], 1, 'DPT_ERR_MODEL_FILE', `${run}: is a folder; give the model file, e.g. ${model}`],
    ['export of a missing model', () => ['export', join(dir, 'nope.dptmodel'), '--format', 'tfjs', '--out', join(dir, 'x')], 1, 'DPT_ERR_MODEL_FILE', `${join(dir, 'nope.dptmodel')}: no such model file`],
    ['a missing config file', () => ['train', '--config', join(dir, 'nope.json')], 1, 'DPT_ERR_CONFIG', `${join(dir, 'nope.json')}: cannot read the config file`],
    ['--resume with a --max-steps before the checkpoint', () => ['train', '--resume', run, '--max-steps', '1'], 1, 'DPT_ERR_CHECKPOINT', `${run}: the checkpoint is at step 2, past this run's last step 1 (maxSteps 1); resume with a larger --max-steps, or --max-steps 0`],
    ['--resume of a folder without a checkpoint', () => ['train', '--resume', aFolder], 1, 'DPT_ERR_CHECKPOINT', `--resume ${aFolder}: no checkpoint here`],
    ['conformance of a missing folder', () => ['conformance', join(dir, 'no-fixtures')], 1, 'DPT_ERR_FIXTURE', join(dir, 'no-fixtures')],
  ];

  for (const [what, args, exit, code, message, env] of cases) {
    it(what, async () => {
      const before = snapshot(dir);
      const r = await runCli(args(), env === undefined ? {} : { env });
      expectError(r, exit, code, message);
      expect(snapshot(dir)).toEqual(before);
    });
  }

  it('no command: the help on stderr, then the error line, exit code 2', async () => {
    const r = await runCli([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: dptrain \[options\] \[command\]/);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe('dptrain: error [DPT_ERR_USAGE]: no command given: use one of train, worker, verify, conformance, export, predict; see dptrain --help');
  });

  it('help when asked: stdout, exit code 0', async () => {
    for (const args of [['--help'], ['help'], ['train', '--help']]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: dptrain/);
      expect(r.stderr).toBe('');
    }
  });

  it('a config value out of range is named with its value, in our wording', async () => {
    const bad = writeJson(dir, 'bad-lr.json', smallMlpConfig({ optimizer: { lr: -0.1 } }));
    const r = await runCli(['train', '--config', bad, '--out', join(dir, 'x')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`dptrain: error [DPT_ERR_CONFIG]: ${bad}: invalid config\noptimizer.lr: must be > 0, got -0.1\n`);
  });

  it('a diverging run stops with DPT_ERR_DIVERGED naming the step; its folder keeps the config and the checkpoint', async () => {
    const bad = writeJson(dir, 'diverge.json', smallMlpConfig({ optimizer: { lr: 1e8, momentum: 0.9 } }));
    const out = join(dir, 'diverged');
    const r = await runCli(['train', '--config', bad, '--out', out, '--workers', '0', '--quiet']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^dptrain: error \[DPT_ERR_DIVERGED\]: training diverged at step \d+: loss is (NaN|-?Infinity); lower optimizer\.lr$/m);
    expect(readdirSync(out).sort()).toEqual(['checkpoint.msgpack', 'config.json']);
  });
});

describe('warnings: accepted, but said', () => {
  const dir = tempDir();

  it('a --chaos fault at a step the run never reaches', async () => {
    const config = writeJson(dir, 'small.json', smallMlpConfig({ maxSteps: 3 }));
    const r = await runCli(['train', '--config', config, '--out', join(dir, 'run'), '--workers', '1', '--chaos', 'crash:worker=0,step=500', '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('dptrain: warning: --chaos: the crash fault at step 500 will not fire: the run ends at step 3\n');
  });

  it('export --format tfjs of a GRU model: TF.js cannot load it', async () => {
    const config = writeJson(dir, 'gru.json', smallMlpConfig({
      data: { type: 'mnist', view: 'rows', trainLimit: 64, testLimit: 32 },
      model: { inputShape: [28, 28], layers: [{ type: 'gru', units: 4 }, { type: 'dense', units: 10 }] },
      batchSize: 32, maxSteps: 1,
    }));
    const t = await runCli(['train', '--config', config, '--out', join(dir, 'gru'), '--workers', '0', '--quiet']);
    expect(t.code, t.stderr).toBe(0);
    const model = join(dir, 'gru', 'model.dptmodel');
    const r = await runCli(['export', model, '--format', 'tfjs', '--out', join(dir, 'gru-tfjs')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(`dptrain: warning: ${model} has a GRU layer: TensorFlow.js cannot load its GRU (reset_after); the files in ${join(dir, 'gru-tfjs')} load in Python Keras\n`);
    expect(readdirSync(join(dir, 'gru-tfjs')).sort()).toEqual(['model.json', 'weights.bin']);
  });
});

describe('--out and --force', () => {
  it('--force starts a new run in a folder holding one, says so, and replaces its files', async () => {
    const dir = tempDir();
    const config = writeJson(dir, 'small.json', smallMlpConfig({ epochs: 2 }));
    const out = join(dir, 'run');
    const first = await runCli(['train', '--config', config, '--out', out, '--workers', '0', '--json', '--max-steps', '12']);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(['train', '--config', config, '--out', out, '--workers', '0', '--json', '--force']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toContain(`dptrain: --force: starting a new run in ${out}, replacing the run files there`);
    expect(again.stderr).not.toMatch(/resuming/);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number });
    expect(metrics.map((m) => m.step)).toEqual([8, 16]);
    expect(lastJson(again.stdout).steps).toBe(16);
  });
});
