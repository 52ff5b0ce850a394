// The benchmark scripts run end to end and print what their documented
// --json contract says, with every implementation and case present. Their
// figures are NOT checked: speed is measured by `npm run bench`, not asserted
// in tests (the machine may be busy). Short windows keep this under a minute.
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lastJson, ROOT, type RunResult } from '../helpers/cli.js';
import { findTorch } from '../helpers/torch.js';

function runNode(script: string, args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('benchmark scripts (contract only, no speed asserted)', () => {
  it('npm run bench --json: every model, batch and implementation, and the 3 shapes x 3 forms of matmul', async () => {
    const r = await runNode('dist/bench/bench.js', ['--rounds', '1', '--seconds', '0.2', '--min-steps', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { results } = lastJson(r.stdout) as { results: Record<string, unknown>[] };
    const training = results.filter((x) => x.model !== 'matmul');
    const cases = ['mlp/64', 'mlp/256', 'lstm/64', 'cnn/64', 'cnn-predict/64'];
    for (const c of cases) {
      const impls = ['dptrain', 'dptrain-ts', 'tfjs-cpu', 'tfjs-wasm', ...(c.startsWith('cnn') && findTorch().skipReason === null ? ['pytorch'] : [])];
      for (const impl of impls) {
        const hit = training.filter((x) => `${x.model}/${x.batch}` === c && x.impl === impl);
        expect(hit, `${c} ${impl}`).toHaveLength(1);
        if (c === 'cnn/64' && impl === 'tfjs-wasm') {
          // TF.js's wasm backend has no convolution gradients: the entry says so.
          expect(hit[0]).toMatchObject({ samplesPerSec: null, error: expect.stringMatching(/Conv2DBackpropFilter/) });
        } else {
          expect(hit[0].samplesPerSec as number).toBeGreaterThan(0);
        }
      }
    }
    const matmul = results.filter((x) => x.model === 'matmul');
    for (const shape of ['64x784x128', '256x784x128', '512x512x512']) {
      for (const form of ['nn', 'tn', 'nt']) {
        for (const impl of ['dptrain', 'tfjs-wasm']) {
          const hit = matmul.filter((x) => x.shape === shape && x.form === form && x.impl === impl);
          expect(hit, `${shape} ${form} ${impl}`).toHaveLength(1);
          expect(hit[0].gflops as number).toBeGreaterThan(0);
        }
      }
    }
  }, 240_000);

  it('npm run bench:scaling --json: workers 0, 1 and 2 for the MLP, the LSTM and the CNN, every example config with the default worker count, ratios and the coordinator\'s share', async () => {
    const r = await runNode('dist/bench/scaling.js', [
      '--rounds', '1', '--warmup-ms', '0', '--steps-mlp', '3', '--steps-lstm', '1', '--steps-cnn', '1', '--steps-default', '3', '--steps-examples', '2', '--no-ceiling', '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson(r.stdout) as { results: Record<string, number | string>[]; ratios: Record<string, number>; coordinator: Record<string, number>[] };
    expect(out.results.map((x) => `${x.model}/${x.batch}/${x.workers}`)).toEqual([
      'mlp/256/0', 'mlp/256/1', 'mlp/256/2', 'lstm/64/0', 'lstm/64/1', 'lstm/64/2', 'cnn/64/0', 'cnn/64/1', 'cnn/64/2',
      'mlp-default/32/0', 'mlp-default/32/default',
      'default:mnist-mlp-bn-dropout/64/0', 'default:mnist-mlp-bn-dropout/64/default', 'default:mnist-lstm/32/0', 'default:mnist-lstm/32/default',
      'default:mnist-gru/32/0', 'default:mnist-gru/32/default', 'default:csv-blobs/32/0', 'default:csv-blobs/32/default',
    ]);
    for (const x of out.results) expect(x.samplesPerSec as number).toBeGreaterThan(0);
    // The default engine says what it chose: the two threads or the coordinator's own.
    for (const x of out.results.filter((y) => y.workers === 'default')) expect([0, availableParallelism()]).toContain(x.chose);
    expect(Object.keys(out.ratios)).toEqual(['mlp', 'lstm', 'cnn', 'mlp-default', 'default:mnist-mlp-bn-dropout', 'default:mnist-lstm', 'default:mnist-gru', 'default:csv-blobs']);
    for (const c of out.coordinator) expect(c.share).toBeGreaterThan(0);
  }, 240_000);
});
