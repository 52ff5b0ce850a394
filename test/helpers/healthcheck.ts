// The image's HEALTHCHECK script (dist/node/http/healthcheck.js), run
// for real against a process of this machine.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './cli.js';

export const HEALTHCHECK_SCRIPT = join(ROOT, 'dist/node/http/healthcheck.js');

/** Runs the script for process `pid`: its exit code and its one line of stdout. */
export function healthcheck(pid: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [HEALTHCHECK_SCRIPT, '--pid', String(pid)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d) => { out += d; });
    c.on('error', reject);
    c.on('close', (code) => resolve({ code, out }));
  });
}
