// Several hosts: the coordinator on the "LAN" address 10.77.0.1 and each
// worker in a network namespace of its own (its own address, link and
// loopback), as separate machines would be. A worker's cable is pulled in
// the middle of a step: nobody is told, packets just stop. The coordinator
// must notice (no pong, no heartbeat within --peer-timeout-ms), give the
// range to the other worker, and end with the --workers 0 weights; when the
// cable is back, the worker notices its connection is gone and reconnects.
//
// Needs root and iproute2 (CI runs as root). Elsewhere it is skipped with
// the reason printed; DPTRAIN_REQUIRE_NETNS=1 (set by .ci/run) makes that a
// failure instead.
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lastJson, runCli, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { COORDINATOR_IP, netnsProblem, VirtualLan } from '../../bench/virtual-lan.js';
import { killAll, startCoordinator, startWorker, summaryOf } from '../helpers/procs.js';

const problem = netnsProblem();
const required = process.env.DPTRAIN_REQUIRE_NETNS === '1';
if (problem !== null) {
  process.stdout.write(`test/cluster/netns.test.ts: skipped: ${problem}${required ? ' (but DPTRAIN_REQUIRE_NETNS=1: failing)' : ''}\n`);
}

describe.runIf(problem === null || required)('a cluster across network namespaces (several hosts, real links)', () => {
  let lan: VirtualLan | null = null;
  afterAll(async () => {
    await killAll();
    lan?.destroy();
  });

  it('namespaces are usable here', () => {
    expect(problem).toBeNull();
  });

  it('a worker whose link is cut mid-step is dropped, its range reassigned; the run ends with the --workers 0 weights; restored, the worker notices and reconnects by itself', async () => {
    lan = new VirtualLan(`t${process.pid % 1000}`);
    const hostA = lan.addHost('a');
    const hostB = lan.addHost('b');
    const dir = tempDir('dptrain-netns-');
    const config = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 3 }));
    const ref = await runCli(['train', '--json', '--quiet', '--config', config, '--out', join(dir, 'ref'), '--workers', '0']);
    expect(ref.code, ref.stderr).toBe(0);

    // Step 5 waits for its first range (no step timeout) until the worker holding it is gone.
    const c = await startCoordinator(['--json', '--config', config, '--out', join(dir, 'run'), '--min-workers', '2',
      '--peer-timeout-ms', '1500', '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=5,ms=600000'], {}, 0, COORDINATOR_IP);
    expect(c.url).toMatch(/^ws:\/\/10\.77\.0\.1:\d+\/ws$/);
    const cache = join(dir, 'cache');
    const a = startWorker(c.url, ['--cache', cache, '--threads', '1', '--name', 'host-a'], {}, 'worker on a', hostA.exec);
    const b = startWorker(c.url, ['--cache', cache, '--threads', '1', '--name', 'host-b'], {}, 'worker on b', hostB.exec);
    const staller = await Promise.race([a, b].map((w) => w.waitFor(/chaos: stalling task/).then(() => w)));
    const stallerHost = staller === a ? hostA : hostB;
    lan.cut(stallerHost);
    // The coordinator's lines name a worker by its --name too.
    const named = (w: typeof a) => (w === a ? '"host-a"' : '"host-b"');
    await c.proc.waitFor(new RegExp(`dropping worker p\\d ${named(staller)} \\(\\S+, ${stallerHost.ip.replace(/\./g, '\\.')}\\): (silent|sent nothing) for \\d+ ms`));
    lan.restore(stallerHost);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    await staller.waitFor(/reconnecting in \d+ ms/);
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(lastJson(ref.stdout).weightsSha256);
    expect(c.proc.out()).toMatch(/step 5: worker p\d .*left: .*; reassigning/);
    // Both hosts joined from their own addresses and did work.
    for (const [h, name] of [[hostA, 'host-a'], [hostB, 'host-b']] as const) {
      expect(c.proc.out()).toMatch(new RegExp(`worker p\\d "${name}" \\(\\S+, ${h.ip.replace(/\./g, '\\.')}\\) joined`));
    }
    for (const w of s.workerStats.slice(0, 2)) expect(w.microShards).toBeGreaterThan(0);
  });

  it('the collective: a member whose cable is pulled mid-step is dropped, the step redone by the others on their own links; the --workers 0 weights', async () => {
    // One LAN at a time: the test before leaves its own (afterAll destroys it), and both would hold the coordinator's address.
    lan?.destroy();
    lan = null;
    const lan2 = new VirtualLan(`u${process.pid % 1000}`);
    try {
      const hosts = ['a', 'b', 'c'].map((n) => lan2.addHost(n));
      const dir = tempDir('dptrain-netns-coll-');
      const config = writeJson(dir, 'mlp.json', smallMlpConfig({ epochs: 3 }));
      const ref = await runCli(['train', '--json', '--quiet', '--config', config, '--out', join(dir, 'ref'), '--workers', '0']);
      expect(ref.code, ref.stderr).toBe(0);
      // Step 5 waits (no step timeout) for the member in slot 0, which stalls until its cable is pulled.
      const c = await startCoordinator(['--json', '--config', config, '--out', join(dir, 'run'), '--min-workers', '3',
        '--peer-timeout-ms', '1500', '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=5,ms=600000'], {}, 0, COORDINATOR_IP);
      const cache = join(dir, 'cache');
      const ws = hosts.map((h) => startWorker(c.url, ['--cache', cache, '--threads', '1', '--name', `host-${h.name}`, '--peer-listen', `${h.ip}:0`], {}, `member on ${h.name}`, h.exec));
      const staller = await Promise.race(ws.map((w) => w.waitFor(/chaos: step 5: stalling/).then(() => w)));
      const host = hosts[ws.indexOf(staller)];
      lan2.cut(host);
      await c.proc.waitFor(new RegExp(`dropping worker p\\d (?:"[^"]*" )?\\(\\S+, ${host.ip.replace(/\./g, '\\.')}\\): (silent|sent nothing) for \\d+ ms`));
      expect(await c.proc.exited).toMatchObject({ code: 0 });
      const s = summaryOf(c.proc);
      expect(s.weightsSha256).toBe(lastJson(ref.stdout).weightsSha256);
      expect(s.topology).toMatchObject({ ran: 'collective' });
      expect(c.proc.out()).toMatch(/collective: step 5: attempt 1 lost p\d \(.*\); attempt 2 with the others/);
      // The members reached each other at their own addresses.
      for (const h of hosts) expect(c.proc.out()).toMatch(new RegExp(`collective: p\\d \\(peers reach it at ${h.ip.replace(/\./g, '\\.')}:\\d+\\) joins`));
    } finally {
      lan2.destroy();
    }
  });
});
