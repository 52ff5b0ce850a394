// A cluster on loopback: a real coordinator (`train --listen`) and real
// `dptrain worker` processes over real sockets. Every run must end with the
// weightsSha256 of `--workers 0`, whoever joined, left, crashed, lied or
// went silent. The tests wait on lines the processes print and on their
// exits; nothing races a sleep.
import { PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { referenceHashes, ROOT, smallBnConfig, smallCnnBnConfig, smallLstmConfig, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { AFTER_TASK, BEFORE_HELLO, offend, type Offense } from '../helpers/evil-worker.js';
import { killAll, startCoordinator, startWorker, summaryOf, type Proc } from '../helpers/procs.js';

const TOKEN = 'lan-test-token';
const ENV = { DPTRAIN_TOKEN: TOKEN };
const dir = tempDir('dptrain-lan-');
const cache = join(dir, 'cache');

const CONFIGS = {
  mlp: smallMlpConfig({ epochs: 3 }),
  bn: smallBnConfig(),
  cnnBn: smallCnnBnConfig({ epochs: 1 }),
  lstm: smallLstmConfig(),
};
type Name = keyof typeof CONFIGS;
const files = Object.fromEntries(Object.entries(CONFIGS).map(([k, v]) => [k, writeJson(dir, `${k}.json`, v)])) as Record<Name, string>;
const referenceHash = referenceHashes(dir);
const refHash = (name: Name): Promise<string> => referenceHash(files[name]);
let runs = 0;

function out(): string {
  return join(dir, `run-${++runs}`);
}

/** A worker with the test's cache and token, on one thread unless args say otherwise. */
function worker(url: string, args: string[] = [], name = 'worker'): Proc {
  return startWorker(url, ['--cache', cache, ...(args.includes('--threads') ? [] : ['--threads', '1']), ...args], ENV, name);
}

beforeAll(async () => {
  await Promise.all((Object.keys(CONFIGS) as Name[]).map(refHash));
});
afterEach(killAll);
afterAll(killAll);

describe('a cluster on loopback (real processes, real sockets)', () => {
  for (const name of ['mlp', 'bn', 'cnnBn'] as const) {
    it(`${name}: a coordinator and 2 worker processes (one with 2 threads) give the --workers 0 weights`, async () => {
      const c = await startCoordinator(['--json', '--config', files[name], '--out', out(), '--min-workers', '2'], ENV);
      const w1 = worker(c.url, ['--threads', '2', '--name', 'two-threads']);
      const w2 = worker(c.url);
      expect(await c.proc.exited).toMatchObject({ code: 0 });
      const s = summaryOf(c.proc);
      expect(s.weightsSha256).toBe(await refHash(name));
      const procs = s.workerStats.filter((w: { kind: string }) => w.kind === 'process');
      expect(procs).toHaveLength(2);
      for (const w of procs) expect(w.microShards).toBeGreaterThan(0);
      expect(procs.map((w: { threads: number }) => w.threads).sort()).toEqual([1, 2]);
      expect((await w1.exited).code).toBe(0);
      expect((await w2.exited).code).toBe(0);
      expect(w1.out()).toMatch(/the coordinator says bye: the run is finished/);
    });
  }

  it('lstm, mixed: one thread of the coordinator and a worker process of 2 threads give the --workers 0 weights', async () => {
    const c = await startCoordinator(['--json', '--config', files.lstm, '--out', out(), '--workers', '1', '--min-workers', '2'], ENV);
    worker(c.url, ['--threads', '2']);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash('lstm'));
    expect(s.workerStats.map((w: { kind: string }) => w.kind).sort()).toEqual(['process', 'thread']);
    for (const w of s.workerStats) expect(w.microShards).toBeGreaterThan(0);
  });

  it('workers join mid-run, one is SIGKILLed mid-step, one leaves on SIGTERM mid-step: the run finishes with the same weights', async () => {
    // Without a step timeout, a stalled range waits for its worker: steps 3 and 12 hold still until the test acts.
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', out(), '--step-timeout-ms', '0',
      '--chaos', 'stall:worker=0,step=3,ms=600000;stall:worker=0,step=12,ms=600000'], ENV);
    const first = worker(c.url, [], 'first');
    await first.waitFor(/chaos: stalling task/);
    const second = worker(c.url, [], 'second');
    await c.proc.waitFor(/worker p2 .* joined/);
    first.kill('SIGKILL');
    await c.proc.waitFor(/step 3: worker p1 .*left: connection closed .*; reassigning/);
    const third = worker(c.url, [], 'third');
    const staller = await Promise.race([second, third].map((w) => w.waitFor(/chaos: stalling task/).then(() => w)));
    const other = staller === second ? third : second;
    staller.kill('SIGTERM');
    expect((await staller.exited).code).toBe(0);
    expect(staller.out()).toMatch(/stopping: SIGTERM received \(handing back task \d+\)/);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
    expect(c.proc.out()).toMatch(/step 12: worker p\d .*left: said bye: SIGTERM received; reassigning/);
    expect((await other.exited).code).toBe(0);
    expect(summaryOf(c.proc).workerStats.map((w: { id: string }) => w.id).sort()).toEqual(['p1', 'p2', 'p3']);
  });

  it('the coordinator killed with SIGKILL resumes with --resume; its workers reconnect by themselves', async () => {
    const runDir = out();
    const args = ['--json', '--config', files.mlp, '--out', runDir, '--checkpoint-every', '2'];
    const c1 = await startCoordinator([...args, '--min-workers', '2', '--chaos', 'stall:worker=0,step=9,ms=60000'], ENV);
    const w1 = worker(c1.url, ['--threads', '2']);
    const w2 = worker(c1.url);
    await c1.proc.waitFor(/checkpoint: step 8 /);
    c1.proc.kill('SIGKILL');
    await c1.proc.exited;
    await Promise.all([w1, w2].map((w) => w.waitFor(/reconnecting in/)));
    const c2 = await startCoordinator(['--json', '--resume', runDir, '--checkpoint-every', '2', '--min-workers', '2'], ENV, c1.port);
    expect(await c2.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c2.proc).weightsSha256).toBe(await refHash('mlp'));
    expect(c2.proc.out()).toMatch(/worker p1 .* joined/);
    for (const w of [w1, w2]) {
      expect((await w.exited).code).toBe(0);
      // The session is the same: the second connection reuses the dataset and the threads.
      expect(w.out().match(/dataset [0-9a-f]{12}:/g)).toHaveLength(1);
    }
  });

  it('SIGTERM on the coordinator: a checkpoint, workers told to come back, and the resumed run ends with the same weights', async () => {
    const runDir = out();
    const c1 = await startCoordinator(['--json', '--config', files.mlp, '--out', runDir, '--step-timeout-ms', '0', '--min-workers', '2',
      '--chaos', 'stall:worker=0,step=5,ms=600000'], ENV);
    const ws = [worker(c1.url), worker(c1.url)];
    await Promise.race(ws.map((w) => w.waitFor(/chaos: stalling task/)));
    c1.proc.kill('SIGTERM');
    expect((await c1.proc.exited).code).toBe(143);
    expect(c1.proc.out()).toMatch(/interrupted at step 4; resume with: (npx )?dptrain train --resume /);
    for (const w of ws) await w.waitFor(/the coordinator says bye: .*resumes with --resume[\s\S]*reconnecting in/);
    const c2 = await startCoordinator(['--json', '--resume', runDir, '--min-workers', '2'], ENV, c1.port);
    expect(await c2.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c2.proc).weightsSha256).toBe(await refHash('mlp'));
    for (const w of ws) expect((await w.exited).code).toBe(0);
  });

  it('every bad input from the network: the offender is dropped and named, the run ends with the fault-free weights', async () => {
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', out(), '--min-workers', String(1 + AFTER_TASK.length),
      '--step-timeout-ms', '1000', '--peer-timeout-ms', '1000'], ENV);
    // Before the run starts: offenders that never get past hello.
    const before = await Promise.all([...Object.keys(BEFORE_HELLO), 'wrong protocol', 'wrong token'].map((o) => offend(c.url, TOKEN, o as Offense)));
    // 1008 policy violation; 1009 message too big (the oversize frame, refused by ws before it is buffered).
    for (const b of before) expect([1008, 1009]).toContain(b.code);
    const log = () => c.proc.out();
    expect(log()).toMatch(/dropping connection from 127\.0\.0\.1: bad message: message from the worker: header length \d+ exceeds/);
    expect(log()).toMatch(/dropping connection from 127\.0\.0\.1: bad message: .*(truncated|not valid msgpack)/);
    expect(log()).toMatch(/dropping connection from 127\.0\.0\.1: bad message: message from the worker: hello: threads: /);
    expect(log()).toMatch(/dropping connection from 127\.0\.0\.1: sent a frame over the limit of \d+ bytes/);
    expect(log()).toMatch(/dropping connection from 127\.0\.0\.1: said nothing within 1000 ms of connecting/);
    expect(log()).toMatch(new RegExp(`refused a worker on evil \\(127\\.0\\.0\\.1\\): protocol version 99, the coordinator speaks ${PROTOCOL_VERSION}`));
    expect(log()).toMatch(/refused a worker on evil \(127\.0\.0\.1\): wrong token/);
    expect(log()).not.toContain(TOKEN);
    expect(before.find((b) => b.received.some((r) => /wrong token/.test(r)))).toBeDefined();
    // Then an honest worker and one offender per kind of wrong answer, all in the first step.
    const honest = worker(c.url, [], 'honest');
    const after = await Promise.all(AFTER_TASK.map((o) => offend(c.url, TOKEN, o)));
    for (const a of after) expect(a.received).toContain('task');
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash('mlp'));
    expect(log()).toMatch(/dropping worker p\d+ .*: answered micro-shards \S+ of step 1 wrongly: \d+ floats, \d+ blocks? of \d+ need/);
    expect(log()).toMatch(/dropping worker p\d+ .*: answered micro-shards \S+ with NaN or Infinity/);
    expect(log()).toMatch(/dropping worker p\d+ .*: answered micro-shards \S+ of step 1 wrongly: computed with weights version \d+, the step's is \d+/);
    expect(log()).toMatch(/dropping worker p\d+ .*: answered task \d+, which it was not given/);
    expect(log()).toMatch(/dropping worker p\d+ \(evil, 127\.0\.0\.1\): sent nothing for \d+ ms/);
    // Nothing else disturbed: the honest worker never failed and finished the run.
    const h = s.workerStats.find((w: { host: string }) => w.host !== 'evil');
    expect(h.faults).toBe(0);
    expect((await honest.exited).code).toBe(0);
  });

  it('refusals are printed by both sides: wrong token, wrong kernels; a worker refused for good exits 1', async () => {
    const tokenFile = join(dir, 'token.txt');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', out(), '--token-file', tokenFile], {});
    const wrong = startWorker(c.url, ['--cache', cache, '--threads', '1', '--token', 'guess'], {}, 'wrong-token');
    expect((await wrong.exited).code).toBe(1);
    expect(wrong.out()).toMatch(/^dptrain: error \[DPT_ERR_REFUSED\]: the coordinator at ws:\/\/\S+ refused this worker: wrong token$/m);
    const ts = startWorker(c.url, ['--cache', cache, '--threads', '1', '--kernels', 'ts'], ENV, 'ts-kernels');
    expect((await ts.exited).code).toBe(1);
    expect(ts.out()).toMatch(/^dptrain: error \[DPT_ERR_REFUSED\]: the coordinator at ws:\/\/\S+ refused this worker: kernels ts, the run computes with wasm$/m);
    expect(c.proc.out()).toMatch(/refused a worker on \S+ \(127\.0\.0\.1\): kernels ts, the run computes with wasm/);
    expect(c.proc.out()).not.toMatch(/guess/);
    c.proc.kill('SIGKILL');
  });

  it('TLS: wss with a self-signed certificate the worker is told to trust', async () => {
    const tls = join(ROOT, 'test/fixtures/tls');
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', out(),
      '--tls-cert', join(tls, 'cert.pem'), '--tls-key', join(tls, 'key.pem')], ENV);
    expect(c.url).toMatch(/^wss:\/\//);
    const untrusting = worker(c.url, [], 'untrusting');
    await untrusting.waitFor(/cannot reach wss:\/\/\S+ \(self[- ]signed certificate\); reconnecting in/);
    untrusting.kill('SIGKILL');
    worker(c.url, ['--tls-ca', join(tls, 'cert.pem')]);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
  });

  it('the dataset: downloaded once by hash and cached; a second run starts without a download; a local copy is verified', async () => {
    const fresh = join(dir, 'fresh-cache');
    const c1 = await startCoordinator(['--json', '--config', files.bn, '--out', out()], ENV);
    const w1 = startWorker(c1.url, ['--cache', fresh, '--threads', '1'], ENV);
    expect(await c1.proc.exited).toMatchObject({ code: 0 });
    expect(w1.out()).toMatch(/dataset [0-9a-f]{12}: downloaded \d+ bytes .*cached as (\S+\.dptdata)/);
    const blob = /cached as (\S+\.dptdata)/.exec(w1.out())![1];
    const c2 = await startCoordinator(['--json', '--config', files.bn, '--out', out()], ENV);
    const w2 = startWorker(c2.url, ['--cache', fresh, '--threads', '1'], ENV);
    expect(await c2.proc.exited).toMatchObject({ code: 0 });
    expect(w2.out()).toMatch(/dataset [0-9a-f]{12}: from the cache/);
    expect(w2.out()).not.toMatch(/downloaded/);
    // --data: the right file is used as is; another file is refused with its hash.
    const c3 = await startCoordinator(['--json', '--config', files.bn, '--out', out()], ENV);
    const wrongData = startWorker(c3.url, ['--threads', '1', '--data', join(ROOT, 'examples/mnist-mlp.json')], ENV, 'wrong-data');
    expect((await wrongData.exited).code).toBe(1);
    expect(wrongData.out()).toMatch(/^dptrain: error \[DPT_ERR_DATASET\]: cannot take part in the run at ws:\/\/\S+: .*SHA-256 of the file is [0-9a-f]{64}, expected [0-9a-f]{64} /m);
    const w3 = startWorker(c3.url, ['--threads', '1', '--data', blob], ENV);
    expect(await c3.proc.exited).toMatchObject({ code: 0 });
    expect(w3.out()).toMatch(/the local copy/);
    expect(summaryOf(c3.proc).weightsSha256).toBe(await refHash('bn'));
    expect(readFileSync(blob).length).toBeGreaterThan(0);
  });

  it('--chaos over the network: disconnect, garble, stall and crash change nothing; corrupt changes the weights', async () => {
    // Every fault on the first range: whoever holds it. Workers that are dropped or disconnect come back by themselves.
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', out(), '--min-workers', '2', '--step-timeout-ms', '1500',
      '--chaos', 'disconnect:worker=0,step=2;garble:worker=0,step=4;stall:worker=0,step=6,ms=4000;crash:worker=0,step=8'], ENV);
    const ws = [worker(c.url, [], 'a'), worker(c.url, [], 'b')];
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
    const log = c.proc.out();
    expect(log).toMatch(/step 2: worker p\d .*left: connection closed/);
    expect(log).toMatch(/dropping worker p\d .*: bad message: /);
    expect(log).toMatch(/step 6: stalled: 1 of \d ranges missing after 1500 ms/);
    expect(log).toMatch(/step 8: worker p\d .*left: connection closed/);
    const said = ws.map((w) => w.out()).join('\n');
    expect(said).toMatch(/chaos: disconnecting in the middle of task/);
    expect(said).toMatch(/chaos: stalling task \d+ for 4000 ms/);
    expect(said).toMatch(/chaos: crashing in the middle of task/);
    expect((await Promise.all(ws.map((w) => w.exited))).map((e) => e.code).sort()).toEqual([0, 70]);

    const bad = await startCoordinator(['--json', '--config', files.mlp, '--out', out(), '--chaos', 'corrupt:worker=0,step=2,index=7'], ENV);
    worker(bad.url);
    expect(await bad.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(bad.proc).weightsSha256).not.toBe(await refHash('mlp'));
  });
});
