// What viewers of the dashboard see: forViewers, the one function every
// message of /live goes through, on the lines the coordinator really logs
// (connection.ts, round.ts, cluster.ts, the dataset route) and on made-up
// ones: no address (IPv4, IPv6, mapped, bracketed, with a zone), no host
// name a hello gave (joined or not), no secret; pseudonyms and figures stay.
import { describe, expect, it } from 'vitest';
import type { WorkerSummary } from '../../src/dispatch/contract.js';
import type { LiveSnapshot, LiveUpdate, ViewerWorker } from '../../coordinator/serve/live/status-types.js';
import {
  ADDRESS, browserFamily, forViewers, HOST, HostBook, scrubAddresses, type ViewerRedaction,
} from '../../coordinator/serve/live/viewer-view.js';

const TAB_HOST = 'Chrome 131 on Linux x86_64';
const WORKERS: WorkerSummary[] = [
  { id: 'thread-1', kind: 'thread', host: 'local', threads: 1, microShards: 10, samplesPerSec: 900, faults: 0, verified: 0, state: 'idle' },
  { id: 'p1', kind: 'process', host: 'vm', name: 'alice-laptop', threads: 4, microShards: 30, samplesPerSec: 2500, faults: 1, verified: 2, state: 'busy' },
  { id: 'p2', kind: 'process', host: 'ip-10-0-0-12', threads: 2, microShards: 5, samplesPerSec: 1200, faults: 0, verified: 0, state: 'gone' },
  { id: 'b3', kind: 'tab', host: TAB_HOST, threads: 1, microShards: 7, samplesPerSec: 300, faults: 0, verified: 1, state: 'quarantined' },
];

function snapshot(lines: string[], workers = WORKERS): LiveSnapshot<WorkerSummary> {
  return {
    type: 'snapshot',
    info: {
      name: 'mlp.json', description: 'served at 192.168.1.20', layers: ['dense 10'], params: 0, loss: 'mse', optimizer: 'SGD lr 0.1',
      batchSize: 8, microShards: 4, epochs: 2, seed: 1, kernels: 'wasm', verifyFraction: 0, tokenRequired: true,
    },
    progress: {
      phase: 'training', step: 3, firstStep: 0, lastStep: 10, stepsPerEpoch: 5, epoch: 1, loss: 0.5, samplesPerSec: 100, stepsPerSec: 2,
      elapsedSec: 1.5, etaSec: 3.5, stats: { verified: 0, disputes: 0, quarantined: 0, speculated: 0, reassigned: 0, refereed: 0 },
    },
    lossStride: 1, losses: [[1, 0.9], [2, 0.7]], evals: [], workers, events: lines.map((line, i) => ({ t: i, line })),
  };
}

function redaction(): ViewerRedaction {
  const hosts = new HostBook();
  hosts.add('bob-desktop', 'process'); // a hello that never got as far as joining
  hosts.add('Firefox 128 on Win32', 'tab');
  return { secrets: ['run-token-123', 'viewer-abc'], hosts };
}

const parse = (json: string) => JSON.parse(json) as LiveSnapshot;

describe('forViewers: the live feed as viewers see it', () => {
  it('workers: a pseudonym, the kind, what it runs in and the figures; never the host', () => {
    const out = parse(forViewers(snapshot([]), redaction()));
    expect(out.workers).toEqual<ViewerWorker[]>([
      { id: 'thread-1', kind: 'thread', runsIn: 'coordinator', threads: 1, microShards: 10, samplesPerSec: 900, faults: 0, verified: 0, state: 'idle' },
      { id: 'p1', name: 'alice-laptop', kind: 'process', runsIn: 'Node.js', threads: 4, microShards: 30, samplesPerSec: 2500, faults: 1, verified: 2, state: 'busy' },
      { id: 'p2', kind: 'process', runsIn: 'Node.js', threads: 2, microShards: 5, samplesPerSec: 1200, faults: 0, verified: 0, state: 'gone' },
      { id: 'b3', kind: 'tab', runsIn: 'Chrome', threads: 1, microShards: 7, samplesPerSec: 300, faults: 0, verified: 1, state: 'quarantined' },
    ]);
    // Everything else passes as it was; an address in a free-text field does not.
    expect(out.losses).toEqual([[1, 0.9], [2, 0.7]]);
    expect(out.progress.etaSec).toBe(3.5);
    expect(out.info.description).toBe(`served at ${ADDRESS}`);
  });

  it("the coordinator's lines: hosts and addresses out, the rest as logged", () => {
    const lines = [
      'listening on ws://0.0.0.0:7070/ws (token required)',
      'dashboard: http://0.0.0.0:7070/#view=viewer-abc (read-only link; the viewer token; /metrics takes Authorization: Bearer <viewer token>)',
      'volunteers: http://0.0.0.0:7070/join#token=<the token>',
      'worker p1 (vm, 127.0.0.1) joined: 4 threads',
      'worker p1 "alice-laptop" (vm, 127.0.0.1) joined: 4 threads',
      `worker b3 (${TAB_HOST}, ::ffff:10.1.2.3) joined: 1 thread`,
      'refused a worker on bob-desktop (192.168.1.7): wrong token',
      'refused a worker on Firefox 128 on Win32 (fe80::1%eth0): wrong token',
      'refused a WebSocket from 2001:db8::8a2e:370:7334: origin http://evil.example is not allowed',
      'dropping connection from [::1]:51234: said nothing within 5000 ms of connecting',
      'dataset: sent 25120176 bytes to 10.0.0.12',
      `step 183: quarantining worker b3 (tab on ${TAB_HOST}): its sums for micro-shards 6-7 of step 183 differ`,
      'step 4: stalled: 1 of 4 ranges missing after 2000 ms: worker p2 (process on ip-10-0-0-12) (micro-shards 2-3, attempt 1)',
      'quarantined address 127.0.0.1 for the rest of the run',
      'dataset: 0 bytes served in this run; quarantined addresses: 10.0.0.5, ::1',
      'a note that leaks the secret run-token-123 by mistake',
      'epoch 1: train loss 0.5123, test loss 0.4987, accuracy 86.50% (12:30:45, v1.2.3)',
    ];
    const out = parse(forViewers(snapshot(lines), redaction())).events.map((e) => e.line);
    expect(out).toEqual([
      'listening on ws://0.0.0.0:7070/ws (token required)',
      'dashboard: http://0.0.0.0:7070/#view=… (read-only link; the viewer token; /metrics takes Authorization: Bearer <viewer token>)',
      'volunteers: http://0.0.0.0:7070/join#token=…',
      'worker p1 joined: 4 threads',
      'worker p1 "alice-laptop" joined: 4 threads',
      'worker b3 (Chrome) joined: 1 thread',
      `refused a worker on ${HOST}: wrong token`,
      'refused a worker on Firefox: wrong token',
      `refused a WebSocket from ${ADDRESS}: origin http://evil.example is not allowed`,
      `dropping connection from ${ADDRESS}:51234: said nothing within 5000 ms of connecting`,
      `dataset: sent 25120176 bytes to ${ADDRESS}`,
      'step 183: quarantining worker b3 (tab on Chrome): its sums for micro-shards 6-7 of step 183 differ',
      `step 4: stalled: 1 of 4 ranges missing after 2000 ms: worker p2 (process on ${HOST}) (micro-shards 2-3, attempt 1)`,
      `quarantined address ${ADDRESS} for the rest of the run`,
      `dataset: 0 bytes served in this run; quarantined addresses: ${ADDRESS}, ${ADDRESS}`,
      'a note that leaks the secret ‹secret› by mistake',
      'epoch 1: train loss 0.5123, test loss 0.4987, accuracy 86.50% (12:30:45, v1.2.3)',
    ]);
  });

  it('updates too; an update without events passes its figures unchanged', () => {
    const update: LiveUpdate<WorkerSummary> = {
      type: 'update', progress: snapshot([]).progress, losses: [[3, 0.6]], evals: [], workers: WORKERS.slice(1, 2),
      events: [{ t: 1, line: 'worker p1 (vm, 127.0.0.1) left: said bye: SIGTERM received' }],
    };
    const out = JSON.parse(forViewers(update, redaction())) as LiveUpdate;
    expect(out.events[0].line).toBe('worker p1 left: said bye: SIGTERM received');
    expect(out.workers[0]).not.toHaveProperty('host');
    const quiet = JSON.parse(forViewers({ ...update, events: [] }, redaction())) as LiveUpdate;
    expect(quiet.losses).toEqual([[3, 0.6]]);
    expect(quiet.workers.map((w) => w.runsIn)).toEqual(['Node.js']);
  });

  it('host names go as whole words only; a name that holds an address loses it', () => {
    const workers: WorkerSummary[] = [{ ...WORKERS[1], host: 'vm', name: 'lab 10.0.0.9' }];
    const out = parse(forViewers(snapshot(['vmstat says vm is busy; worker p1 (vm, 127.0.0.1) is slow'], workers), redaction()));
    expect(out.events[0].line).toBe(`vmstat says ${HOST} is busy; worker p1 is slow`);
    expect(out.workers[0].name).toBe(`lab ${ADDRESS}`);
  });
});

describe('the pieces', () => {
  it('scrubAddresses: IPv4 and IPv6 in every spelling, not times, versions or the bind-any addresses', () => {
    expect(scrubAddresses('from 127.0.0.1, 10.20.30.40:8080, [::1]:7070, ::1, fe80::a1b2%wlan0, ::ffff:192.0.2.1 and 2001:db8::1.'))
      .toBe(`from ${ADDRESS}, ${ADDRESS}:8080, ${ADDRESS}:7070, ${ADDRESS}, ${ADDRESS}, ${ADDRESS} and ${ADDRESS}.`);
    expect(scrubAddresses('0.0.0.0:7070 and [::]:7070, at 12:30:45, node v20.20.2, Chrome 131.0.6778.85, 999.1.1.1, 1.2.3.4.5'))
      .toBe('0.0.0.0:7070 and [::]:7070, at 12:30:45, node v20.20.2, Chrome 131.0.6778.85, 999.1.1.1, 1.2.3.4.5');
  });

  it('browserFamily: the family of what a tab calls itself, "browser" for anything else', () => {
    expect(['Chrome 131 on Linux x86_64', 'Firefox 128 on Win32', 'Safari 17 on MacIntel', 'Edge 120 on Win32', 'a browser on unknown', 'Chromebook 5']
      .map(browserFamily)).toEqual(['Chrome', 'Firefox', 'Safari', 'Edge', 'browser', 'browser']);
  });

  it('HostBook keeps the newest hosts only, and never a thread\'s', () => {
    const book = new HostBook(3);
    for (const h of ['a', 'b', 'c', 'a', 'd']) book.add(h, 'process');
    book.add('local', 'thread');
    expect([...book.entries()].map(([h]) => h)).toEqual(['c', 'a', 'd']);
  });
});
