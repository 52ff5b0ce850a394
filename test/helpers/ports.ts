// Ports for processes that must be told a fixed port on their command line
// (the HEALTHCHECK script and the deploy recipes read it from there, so
// port 0 cannot be used). Binding port 0, closing, and handing the number
// on races: until the child binds it, any other listen(0) of the machine
// may be given the same port. So the ports come from below the kernel's
// ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default),
// which listen(0) never hands out, in a block of its own per vitest worker
// (VITEST_POOL_ID), each checked free before it is handed out.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const FIRST = 20_000;
const BLOCK = 500;

/** The lowest ephemeral port of this machine (ports below it are never handed out by listen(0)). */
function ephemeralStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return 32_768;
  }
}

const pool = Math.max(0, Number(process.env.VITEST_POOL_ID ?? '1') - 1);
let next = FIRST + pool * BLOCK;
const end = Math.min(next + BLOCK, ephemeralStart());

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A port free now that no listen(0) will take before the caller's child process binds it. */
export async function freePort(): Promise<number> {
  while (next < end) {
    const port = next++;
    if (await isFree(port)) return port;
  }
  throw new Error(`no free port left in this test worker's block below ${end} (VITEST_POOL_ID ${pool + 1})`);
}
