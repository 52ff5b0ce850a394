// The collective on loopback: a real coordinator and real `dptrain worker
// --peer-listen` processes reducing among themselves over real peer links.
// Every run must end with the weightsSha256 of `--workers 0`, with 2, 3 and
// 4 members, with a member that dies in the middle of the reduction (a
// --chaos crash and a SIGKILL from outside), one that joins mid-run, and a
// member that sends its peers a garbled frame or a corrupted slice.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { lastJson, referenceHashes, ROOT, runCli, smallBnConfig, smallLstmConfig, smallMlpConfig, tempDir, writeJson } from '../helpers/cli.js';
import { killAll, startCoordinator, startWorker, summaryOf, type Proc } from '../helpers/procs.js';

const TOKEN = 'collective-test-token';
const ENV = { DPTRAIN_TOKEN: TOKEN };
const dir = tempDir('dptrain-collective-');
const cache = join(dir, 'cache');

const CONFIGS = {
  mlp: smallMlpConfig({ epochs: 3 }),
  bn: smallBnConfig(),
  lstm: smallLstmConfig(),
  /** Adam (issue 22): its moments and update count travel in the replica; every member applies the same update. */
  adam: smallMlpConfig({ epochs: 2, optimizer: { type: 'adam', lr: 0.002 } }),
  lstm4: smallLstmConfig({ epochs: 4 }),
};
type Name = keyof typeof CONFIGS;
const files = Object.fromEntries(Object.entries(CONFIGS).map(([k, v]) => [k, writeJson(dir, `${k}.json`, v)])) as Record<Name, string>;
const referenceHash = referenceHashes(dir);
const refHash = (name: Name): Promise<string> => referenceHash(files[name]);
let runs = 0;

/** A member of the collective: one thread, a peer port on loopback. */
function member(url: string, name: string, args: string[] = []): Proc {
  return startWorker(url, ['--cache', cache, '--threads', '1', '--peer-listen', '127.0.0.1:0', '--name', name, ...args], ENV, name);
}

beforeAll(async () => {
  await Promise.all((Object.keys(CONFIGS) as Name[]).map(refHash));
});
afterEach(killAll);
afterAll(killAll);

describe('the collective on loopback (real processes, real peer links)', () => {
  for (const [name, members] of [['mlp', 2], ['mlp', 3], ['mlp', 4], ['bn', 3], ['lstm', 2], ['lstm', 4], ['adam', 3]] as const) {
    it(`${name}: ${members} members reduce among themselves and end with the --workers 0 weights`, async () => {
      const c = await startCoordinator(['--json', '--config', files[name], '--out', join(dir, `run-${++runs}`), '--min-workers', String(members)], ENV);
      const ws = Array.from({ length: members }, (_, i) => member(c.url, `m${i + 1}`));
      expect(await c.proc.exited).toMatchObject({ code: 0 });
      const s = summaryOf(c.proc);
      expect(s.weightsSha256).toBe(await refHash(name));
      expect(s.topology).toMatchObject({ ran: 'collective', starSteps: 0 });
      expect(c.proc.out()).toMatch(new RegExp(`collective: p${members} \\(peers reach it at 127\\.0\\.0\\.1:\\d+\\) joins from the next step`));
      for (const w of ws) expect((await w.exited).code).toBe(0);
    });
  }

  it('a member that dies in the middle of the reduction (its parts out, its slice not): the step is redone by the others', async () => {
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', join(dir, `run-${++runs}`), '--min-workers', '3',
      '--chaos', 'crash:worker=1,step=6'], ENV);
    const ws = [1, 2, 3].map((i) => member(c.url, `m${i}`));
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
    expect(c.proc.out()).toMatch(/collective: step 6: attempt 1 lost p\d \(.*\); attempt 2 with the others/);
    const codes = await Promise.all(ws.map((w) => w.exited));
    expect(codes.map((x) => x.code).sort()).toEqual([0, 0, 70]);
    expect(ws.some((w) => /chaos: step 6: dying in the middle of the reduction/.test(w.out()))).toBe(true);
  });

  it('a member SIGKILLed in the middle of a step, and one that joins mid-run: the --workers 0 weights', async () => {
    // Step 5 waits (no step timeout) for the member in slot 1, which stalls: it is SIGKILLed there.
    const c = await startCoordinator(['--json', '--config', files.lstm4, '--out', join(dir, `run-${++runs}`), '--min-workers', '3',
      '--step-timeout-ms', '0', '--chaos', 'stall:worker=1,step=5,ms=600000'], ENV);
    const ws = [1, 2, 3].map((i) => member(c.url, `m${i}`));
    const staller = await Promise.race(ws.map((w) => w.waitFor(/chaos: step 5: stalling/).then(() => w)));
    // A joiner while step 5 waits: it takes part from the step after, whatever happens to step 5.
    const late = member(c.url, 'late');
    await c.proc.waitFor(/collective: p4 \(peers reach it at 127\.0\.0\.1:\d+\) joins from the next step/);
    staller.kill('SIGKILL');
    await c.proc.waitFor(/collective: step 5: attempt 1 lost p\d \(.*\); attempt 2 with the others/);
    await late.waitFor(/collective: holds the replica for step 6/);
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash('lstm4'));
    expect(s.topology).toMatchObject({ ran: 'collective', starSteps: 0 });
    expect((await late.exited).code).toBe(0);
  });

  for (const [kind, evidence] of [
    ['garble', /closing the peer link from p\d: bad frame: message from the peer/],
    ['corrupt', /the gathered sum does not hash to the commit's/],
  ] as const) {
    it(`a member that sends its peers ${kind === 'garble' ? 'a frame that is no message' : 'a corrupted slice'} is reported and dropped; the run keeps the --workers 0 weights`, async () => {
      const c = await startCoordinator(['--json', '--config', files.mlp, '--out', join(dir, `run-${++runs}`), '--min-workers', '3',
        '--chaos', `${kind}:worker=0,step=4`], ENV);
      const ws = [1, 2, 3].map((i) => member(c.url, `m${i}`));
      expect(await c.proc.exited).toMatchObject({ code: 0 });
      expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
      expect(c.proc.out()).toMatch(/collective: dropping p\d: reported by p\d/);
      expect(ws.map((w) => w.out()).join('\n')).toMatch(evidence);
    });
  }

  it('--grad-wire bf16: the same bits with --workers 0, 2 threads (the step loop), 3 processes on the star and 3 in the collective; not f32\'s', async () => {
    const bf16 = async (args: string[]) => {
      const r = await runCli(['train', '--json', '--quiet', '--config', files.bn, '--out', join(dir, `run-${++runs}`), '--grad-wire', 'bf16', ...args]);
      expect(r.code, r.stderr).toBe(0);
      return lastJson(r.stdout).weightsSha256 as string;
    };
    const local = await bf16(['--workers', '0']);
    expect(local).not.toBe(await refHash('bn'));
    expect(await bf16(['--workers', '2'])).toBe(local);
    for (const topology of ['star', 'collective'] as const) {
      const c = await startCoordinator(['--json', '--config', files.bn, '--out', join(dir, `run-${++runs}`), '--min-workers', '3', '--grad-wire', 'bf16', '--topology', topology], ENV);
      const ws = [1, 2, 3].map((i) => (topology === 'star'
        ? startWorker(c.url, ['--cache', cache, '--threads', i === 3 ? '2' : '1', '--name', `s${i}`], ENV, `s${i}`)
        : member(c.url, `m${i}`)));
      expect(await c.proc.exited).toMatchObject({ code: 0 });
      const s = summaryOf(c.proc);
      expect(s.weightsSha256, topology).toBe(local);
      expect(s.topology).toMatchObject({ ran: topology, wire: 'bf16' });
      for (const w of ws) expect((await w.exited).code).toBe(0);
    }
  });

  it('a bad-input corpus at a member\'s peer port (random bytes, a wrong token, an oversized frame, a part for a step far ahead, a NaN part from a peer with no range in the step; NaN from a real member: test/collective) is refused, the offender named, and the run keeps the --workers 0 weights', async () => {
    // Step 3 waits (no step timeout) for the member in slot 0, which stalls; the corpus goes to another member meanwhile.
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', join(dir, `run-${++runs}`), '--min-workers', '3',
      '--step-timeout-ms', '0', '--chaos', 'stall:worker=0,step=3,ms=600000'], ENV);
    const ws = [1, 2, 3].map((i) => member(c.url, `m${i}`));
    const staller = await Promise.race(ws.map((w) => w.waitFor(/chaos: step 3: stalling/).then(() => w)));
    const target = ws.find((w) => w !== staller)!;
    const port = Number((await target.waitFor(/peers: listening on port (\d+)/))[1]);
    const runId = (await target.waitFor(/worker p\d of run (\S+): ready/))[1];
    const { WebSocket } = await import('ws');
    const { encode } = await import('../../src/protocol/codec.js');
    const link = async (frames: (Uint8Array | 'hello' | 'bad-token')[]) => {
      const sock = new WebSocket(`ws://127.0.0.1:${port}/peer`);
      await new Promise((resolve, reject) => { sock.once('open', resolve); sock.once('error', reject); });
      const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      for (const f of frames) {
        if (f === 'hello' || f === 'bad-token') {
          sock.send(encode({ type: 'peer-hello', protocol: 2, token: f === 'hello' ? TOKEN : 'not-the-token', runId, memberId: 'evil' }));
          await new Promise((resolve) => sock.once('message', resolve));
        } else {
          sock.send(f);
        }
      }
      await closed;
    };
    const part = (step: number, value: number) => encode({
      type: 'part', step, attempt: 1, slice: 0, blocks: [{ level: 1, index: 0 }], pack: { vectors: 1, length: 4, half: 0 }, sums: Float32Array.from([value, 1, 2, 3]),
    });
    await link([Uint8Array.from([0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5])]);
    await link(['bad-token']);
    await link(['hello', new Uint8Array(4 << 20)]);
    await link(['hello', part(5000, 1)]);
    await link(['hello', part(2, NaN)]);
    staller.kill('SIGKILL');
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    expect(summaryOf(c.proc).weightsSha256).toBe(await refHash('mlp'));
    const seen = target.out();
    expect(seen).toMatch(/closing the peer link from 127\.0\.0\.1: bad frame: message from the peer: header length \d+ exceeds the limit/);
    expect(seen).toMatch(/refused a peer link from 127\.0\.0\.1: wrong token/);
    expect(seen).toMatch(/closing the peer link from evil: bad frame: message from the peer: frame of 4194304 bytes exceeds the limit of \d+/);
    expect(seen).toMatch(/closing the peer link from evil: sent a part of step 5001 attempt 1, far ahead/);
    expect(seen).toMatch(/closing the peer link from evil: sent a part of step 3, in which it has no range/);
    expect(c.proc.out()).toMatch(/collective: step \d+: p\d reports evil: /);
  });

  it('a run over TLS keeps its peer links over TLS (wss, the peers\' certificate trusted with --tls-ca); a member without a peer certificate is refused at start', async () => {
    const tls = join(ROOT, 'test/fixtures/tls');
    const c = await startCoordinator(['--json', '--config', files.mlp, '--out', join(dir, `run-${++runs}`), '--min-workers', '2',
      '--tls-cert', join(tls, 'cert.pem'), '--tls-key', join(tls, 'key.pem')], ENV);
    expect(c.url).toMatch(/^wss:/);
    const plain = member(c.url, 'plain', ['--tls-ca', join(tls, 'cert.pem')]);
    expect((await plain.exited).code).toBe(2);
    expect(plain.out()).toMatch(/--peer-listen: the run uses TLS \(wss:\/\/\), so the peer links do too: give --peer-tls-cert and --peer-tls-key/);
    const pem = ['--tls-ca', join(tls, 'cert.pem'), '--peer-tls-cert', join(tls, 'cert.pem'), '--peer-tls-key', join(tls, 'key.pem')];
    const ws = [1, 2].map((i) => member(c.url, `m${i}`, pem));
    expect(await c.proc.exited).toMatchObject({ code: 0 });
    const s = summaryOf(c.proc);
    expect(s.weightsSha256).toBe(await refHash('mlp'));
    expect(s.topology).toMatchObject({ ran: 'collective' });
    for (const w of ws) expect(w.out()).toMatch(/peers: listening on port \d+ \(TLS\)/);
  });
});
