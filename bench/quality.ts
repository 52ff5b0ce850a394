// `npm run quality`: the full-length accuracy runs of the example configs
// (what docs/performance.md and the closing notes quote). Each config trains in a
// real `dptrain train --json` process; the table gives the test accuracy
// against the stated target and the time it took.
//
//   node dist/bench/quality.js [--only mlp,lstm,cnn] [--workers N] [--grad-wire f32,bf16] [--json]
//
// --grad-wire f32,bf16 trains every config with each wire (bf16: every node
// of the reduction tree rounded to bfloat16, docs/collective.md) and gives
// bf16's accuracy beside f32's.
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Target { name: string; config: string; minAccuracy: number }

const TARGETS: Target[] = [
  { name: 'mlp', config: 'examples/mnist-mlp.json', minAccuracy: 0.95 },
  { name: 'mlp-bn-dropout', config: 'examples/mnist-mlp-bn-dropout.json', minAccuracy: 0.95 },
  { name: 'lstm', config: 'examples/mnist-lstm.json', minAccuracy: 0.95 },
  { name: 'gru', config: 'examples/mnist-gru.json', minAccuracy: 0.95 },
  { name: 'cnn', config: 'examples/mnist-cnn.json', minAccuracy: 0.98 },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function run(config: string, extra: string[]): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const out = mkdtempSync(join(tmpdir(), 'dptrain-quality-'));
    const child = spawn(process.execPath, [join(ROOT, 'bin/dptrain.js'), 'train', '--config', join(ROOT, config), '--out', out, '--json', ...extra], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) { reject(new Error(`${config}: exit code ${code}`)); return; }
      const lines = stdout.trim().split('\n');
      resolve(JSON.parse(lines[lines.length - 1]));
    });
  });
}

const only = arg('--only')?.split(',');
const workers = arg('--workers');
const json = process.argv.includes('--json');
const wires = (arg('--grad-wire') ?? 'f32').split(',');
for (const w of wires) if (w !== 'f32' && w !== 'bf16') throw new Error(`--grad-wire: "${w}" is not f32 or bf16`);
const rows: Record<string, unknown>[] = [];
for (const t of TARGETS.filter((x) => only === undefined || only.includes(x.name))) for (const wire of wires) {
  const s = await run(t.config, [...(workers !== undefined ? ['--workers', workers] : []), '--grad-wire', wire]);
  const row = {
    model: t.name, config: t.config, wire, epochs: s.epochs, steps: s.steps,
    accuracy: s.test.accuracy, f1Macro: s.test.f1Macro, target: t.minAccuracy,
    passed: s.test.accuracy >= t.minAccuracy, wallSeconds: s.wallSeconds, samplesPerSec: s.samplesPerSec,
    weightsSha256: s.weightsSha256,
  };
  rows.push(row);
  process.stderr.write(`${t.name} (${wire}): accuracy ${(100 * s.test.accuracy).toFixed(2)}% (target ${(100 * t.minAccuracy).toFixed(1)}%), macro-F1 ${s.test.f1Macro.toFixed(4)}, ${s.wallSeconds.toFixed(0)} s, ${Math.round(s.samplesPerSec)} samples/s\n`);
}
if (json) {
  process.stdout.write(JSON.stringify({ results: rows }) + '\n');
} else {
  process.stdout.write('model            wire  accuracy  target  macro-F1  seconds  samples/s\n');
  for (const r of rows as any[]) {
    process.stdout.write(`${r.model.padEnd(16)} ${r.wire.padEnd(4)} ${(100 * r.accuracy).toFixed(2).padStart(7)}%  ${(100 * r.target).toFixed(1)}%  ${r.f1Macro.toFixed(4)}  ${r.wallSeconds.toFixed(0).padStart(7)}  ${Math.round(r.samplesPerSec).toString().padStart(9)}  ${r.passed ? 'ok' : 'BELOW TARGET'}\n`);
  }
}
if (rows.some((r) => !(r as any).passed)) process.exitCode = 1;
