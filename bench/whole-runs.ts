// `npm run bench:whole-runs`: what a user gets from the default engine, in
// runs as users make them. Every example config is trained end to end by
// `dptrain train --config X --json` in a fresh process (start-up, data,
// threads starting and compiling, the choice, evaluation, the model file:
// all of it), with the default engine (no --workers) and with --workers 0,
// alternating (default first in even rounds, --workers 0 first in odd
// ones), `rounds` times each. Per config: samples/s of the summary (steps'
// time only, as the summary counts it) and the process's wall time, best
// (the least disturbed: other work on the machine only slows a run down)
// and median, the default's ratio over --workers 0 on both (and pooled: all
// the runs' samples over all their time), and what the default chose each
// time.
//
//   node dist/bench/whole-runs.js [--configs mnist-mlp,csv-blobs,...] [--rounds 3] [--min-seconds 10] [--epochs N] [--json]
//
// A config whose runs are short gets more rounds than `rounds`: until each
// engine has run for --min-seconds in all (a run of a second trains for a
// tenth of it, and its samples/s is mostly noise).
// --epochs shortens every run (not a whole run then: say so with the
// figures). The machine's load average is printed before and after: other
// processes take cores from a run, and a 2-core machine shows it. With --json
// the last line of stdout is {"load": [before, after], "configs": [{"config",
// "default": {"samplesPerSec": [..], "wallSeconds": [..], "chose": [..]},
// "workers0": {...}, "ratio": {"best", "median", "pooled", "wallBest", "wallMedian"}}]}.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './rounds.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'dptrain.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

interface Run {
  samplesPerSec: number;
  wallSeconds: number;
  /** What the default engine computed on: threads, or 0 for the coordinator's thread. */
  chose: number;
  reason: string;
}

/** One `dptrain train` to its end; its summary and the process's wall time. */
function train(config: string, workers0: boolean, epochs: string | undefined): Promise<Run> {
  const out = mkdtempSync(join(tmpdir(), 'dptrain-whole-'));
  const args = [BIN, 'train', '--config', config, '--out', join(out, 'run'), '--json', '--quiet',
    ...(workers0 ? ['--workers', '0'] : []), ...(epochs === undefined ? [] : ['--epochs', epochs])];
  const t0 = performance.now();
  return new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      const wallSeconds = (performance.now() - t0) / 1000;
      rmSync(out, { recursive: true, force: true });
      if (code !== 0) { reject(new Error(`dptrain train ${args.slice(2).join(' ')} exited ${code}:\n${stderr}`)); return; }
      const s = JSON.parse(stdout.trim().split('\n').pop()!) as { samplesPerSec: number; workers: number; workersChoice?: { workers: number; reason: string } };
      resolve({
        samplesPerSec: s.samplesPerSec, wallSeconds,
        chose: s.workersChoice?.workers ?? s.workers, reason: s.workersChoice?.reason ?? '',
      });
    });
  });
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

async function main(): Promise<void> {
  const all = readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, '')).sort();
  const names = arg('--configs')?.split(',') ?? all;
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new Error(`--configs: no example ${unknown.join(', ')} (there are ${all.join(', ')})`);
  const rounds = Number(arg('--rounds') ?? 3);
  const minSeconds = Number(arg('--min-seconds') ?? 10);
  const epochs = arg('--epochs');
  const json = process.argv.includes('--json');
  const loadBefore = loadavg();
  const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
  say(`whole runs: ${names.join(', ')}; ${rounds} rounds (more until ${minSeconds} s per engine), alternating; ${epochs === undefined ? 'every epoch' : `--epochs ${epochs}`}; load average ${load()}`);
  const results = [];
  for (const name of names) {
    const config = join(ROOT, 'examples', `${name}.json`);
    const runs = { default: [] as Run[], workers0: [] as Run[] };
    // Short runs are noisy (a config of a second trains for a tenth of it): they take more rounds, until each
    // engine has run for minSeconds in all.
    const spent = (k: 'default' | 'workers0') => runs[k].reduce((t, x) => t + x.wallSeconds, 0);
    for (let r = 0; r < rounds || Math.min(spent('default'), spent('workers0')) < minSeconds; r++) {
      const order: ('default' | 'workers0')[] = r % 2 === 0 ? ['default', 'workers0'] : ['workers0', 'default'];
      for (const which of order) {
        const run = await train(config, which === 'workers0', epochs);
        runs[which].push(run);
        say(`  ${name} ${which === 'default' ? 'default   ' : '--workers 0'} round ${r + 1}: ${Math.round(run.samplesPerSec)} samples/s, ${run.wallSeconds.toFixed(1)} s` +
          (which === 'default' ? ` (chose ${run.chose === 0 ? "the coordinator's thread" : `${run.chose} threads`})` : '') + `; load ${load()}`);
      }
    }
    const sps = (k: 'default' | 'workers0') => runs[k].map((x) => x.samplesPerSec);
    const wall = (k: 'default' | 'workers0') => runs[k].map((x) => x.wallSeconds);
    // Every run of a config trains the same samples: their total over the total time is the harmonic mean.
    const pooled = (xs: number[]) => xs.length / xs.reduce((t, x) => t + 1 / x, 0);
    const ratio = {
      best: Math.max(...sps('default')) / Math.max(...sps('workers0')),
      median: median(sps('default')) / median(sps('workers0')),
      pooled: pooled(sps('default')) / pooled(sps('workers0')),
      // Wall time: lower is better, so --workers 0's over the default's.
      wallBest: Math.min(...wall('workers0')) / Math.min(...wall('default')),
      wallMedian: median(wall('workers0')) / median(wall('default')),
    };
    say(`${name}: default ${Math.round(Math.max(...sps('default')))} best / ${Math.round(median(sps('default')))} median samples/s, ` +
      `--workers 0 ${Math.round(Math.max(...sps('workers0')))} / ${Math.round(median(sps('workers0')))}: ` +
      `${ratio.best.toFixed(2)}x best, ${ratio.median.toFixed(2)}x median, ${ratio.pooled.toFixed(2)}x pooled; wall ${ratio.wallBest.toFixed(2)}x best, ${ratio.wallMedian.toFixed(2)}x median`);
    results.push({
      config: name,
      default: { samplesPerSec: sps('default'), wallSeconds: wall('default'), chose: runs.default.map((x) => x.chose), reasons: runs.default.map((x) => x.reason) },
      workers0: { samplesPerSec: sps('workers0'), wallSeconds: wall('workers0') },
      ratio,
    });
  }
  say(`load average after: ${load()}`);
  if (json) process.stdout.write(JSON.stringify({ load: [loadBefore, loadavg()], epochs: epochs ?? null, rounds, configs: results }) + '\n');
}

main().catch((err: Error) => {
  process.stderr.write(`${err.message}\n`);
  process.exit(1);
});
