// What every recipe must survive, played on a rehearsed cluster (compose or
// Kubernetes, rehearse.ts): a coordinator and workers train; the coordinator
// is stopped with SIGTERM (docker stop, a pod deleted or evicted) and started
// again with the same command; a worker leaves (scaled down) and another
// joins (scaled up); the run ends with the weights of the uninterrupted run.
//
// Nothing waits on time. The run's config holds step STALL_STEP still
// (`stall` on range slot 0 with no step timeout): the test acts while it
// is held. A fault fires on a slot's first attempt in each coordinator
// process, so the restarted coordinator holds the resumed step again, and
// the worker holding it is the one scaled down: its range is handed back,
// reassigned, and the run goes on.
import { expect } from 'vitest';
import { smallMlpConfig } from '../helpers/cli.js';
import type { Proc } from '../helpers/procs.js';

export const STALL_STEP = 3;

/** The run the recipes are given (their ConfigMap, their mounted config file). */
export const REHEARSAL_CONFIG = smallMlpConfig({
  epochs: 2,
  stepTimeoutMs: 0,
  chaos: `stall:worker=0,step=${STALL_STEP},ms=600000`,
});

/** The same run, uninterrupted and undisturbed, for `--workers 0` on the host. */
export const REFERENCE_CONFIG = Object.fromEntries(Object.entries(REHEARSAL_CONFIG).filter(([k]) => k !== 'chaos' && k !== 'stepTimeoutMs'));

export interface ProbeResult { ok: boolean; detail: string }

/** A check the recipe declares (a Kubernetes probe, the image's HEALTHCHECK). */
export interface Probe {
  what: string;
  check(): Promise<ProbeResult>;
}

export interface Container {
  proc: Proc;
  /** Liveness checks (startup, liveness, HEALTHCHECK). */
  alive: Probe[];
  /** Readiness checks (none where the recipe declares none). */
  ready: Probe[];
}

export interface RehearsedCluster {
  /** The coordinator's container: the same command each time (Kubernetes: a new pod of the Job). Resolves once it listens. */
  startCoordinator(): Promise<Container>;
  /** One more worker replica. */
  startWorker(): Promise<Container>;
  /** The coordinator's /metrics as the recipe publishes it. */
  metricsUrl: string;
  /** The viewer token the recipe gives the coordinator (its Secret, its env file): /metrics needs it. */
  viewerToken: string;
}

/** GET url: status and body. */
export async function httpProbe(what: string, url: string): Promise<Probe> {
  return {
    what: `${what} (${url})`,
    async check() {
      try {
        const res = await fetch(url);
        return { ok: res.status >= 200 && res.status < 400, detail: `${res.status} ${(await res.text()).trim()}` };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
  };
}

async function expectProbes(c: Container, alive: boolean, ready: boolean | undefined): Promise<void> {
  for (const p of c.alive) expect(await p.check(), p.what).toMatchObject({ ok: alive });
  if (ready !== undefined) for (const p of c.ready) expect(await p.check(), p.what).toMatchObject({ ok: ready });
}

const READY = /ready \(\d+ threads?\)/;

const count = (text: string, re: RegExp) => text.match(new RegExp(re.source, 'g'))?.length ?? 0;

/** Matches output in which `re` occurs n times. */
const nth = (re: RegExp, n: number) => new RegExp(`(?:[\\s\\S]*?${re.source}){${n}}`);

/** The first of `procs` to print `re` once more than `before[i]` times. */
async function nextToPrint(procs: Proc[], re: RegExp, before: number[]): Promise<Proc> {
  return Promise.race(procs.map((p, i) =>
    p.waitFor(nth(re, before[i] + 1)).then(
      () => p,
      () => new Promise<Proc>(() => {}), // exited or gave up: another one prints it
    )));
}

/** The weights' digest in a finished run's output: the --json summary's, or the line `weights sha256 HEX`. */
export function weightsShaIn(stdout: string): string {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  if (last.startsWith('{')) return (JSON.parse(last) as { weightsSha256: string }).weightsSha256;
  const m = /^weights sha256 ([0-9a-f]{64})$/m.exec(stdout);
  if (m === null) throw new Error(`no weights digest in:\n${stdout}`);
  return m[1];
}

/** The scenario, `workers` replicas at first. Returns the resumed coordinator's stdout. */
export async function rehearseRun(cluster: RehearsedCluster, workers: number, referenceSha: string): Promise<string> {
  const STALL = /chaos: stalling task/;
  const first = await cluster.startCoordinator();
  const pool: Container[] = [];
  for (let i = 0; i < workers; i++) pool.push(await cluster.startWorker());

  // 1. Step STALL_STEP is held: every container alive and ready (the probes need no credential), the
  // metrics published to the viewer token's holders.
  await nextToPrint(pool.map((w) => w.proc), STALL, pool.map(() => 0));
  for (const w of pool) await w.proc.waitFor(READY);
  await expectProbes(first, true, true);
  for (const w of pool) await expectProbes(w, true, true);
  expect((await fetch(cluster.metricsUrl)).status, 'the metrics without the viewer token').toBe(401);
  const metrics = await (await fetch(cluster.metricsUrl, { headers: { authorization: `Bearer ${cluster.viewerToken}` } })).text();
  expect(metrics).toMatch(/^dptrain_phase\{phase="training"\} 1$/m);
  expect(metrics).toMatch(new RegExp(`^dptrain_steps_total ${STALL_STEP - 1}$`, 'm'));

  // 2. SIGTERM on the coordinator (docker stop, a pod deleted or evicted): a checkpoint, exit 143.
  first.proc.kill('SIGTERM');
  expect((await first.proc.exited).code).toBe(143);
  expect(first.proc.out()).toMatch(new RegExp(`interrupted at step ${STALL_STEP - 1}; resume with: `));
  // The workers stay, alive but not ready, and look for the coordinator.
  for (const w of pool) {
    await w.proc.waitFor(/the coordinator says bye: [\s\S]*reconnecting in/);
    await expectProbes(w, true, false);
  }

  // 3. The same command again: it resumes from the checkpoint on the volume; the workers come back by themselves.
  const stalledBefore = pool.map((w) => count(w.proc.out(), STALL));
  const readyBefore = pool.map((w) => count(w.proc.out(), READY));
  const second = await cluster.startCoordinator();
  const holder = await nextToPrint(pool.map((w) => w.proc), STALL, stalledBefore);
  expect(second.proc.out()).toMatch(new RegExp(`resuming at step ${STALL_STEP - 1}`));
  // All of them, before the step is let go: a worker still between two attempts when the run
  // ends would not hear that it is finished (it would go on looking for the coordinator).
  for (const [i, w] of pool.entries()) await w.proc.waitFor(nth(READY, readyBefore[i] + 1));

  // 4. Scaled up: a new worker joins. Scaled down: the worker holding the step gets SIGTERM and
  // hands its range back, which is reassigned.
  const added = await cluster.startWorker();
  await added.proc.waitFor(READY);
  await expectProbes(added, true, true);
  holder.kill('SIGTERM');
  expect((await holder.exited).code).toBe(0);
  expect(holder.out()).toMatch(/stopping: SIGTERM received \(handing back task \d+\)/);
  pool.push(added);

  // 5. The run ends with the uninterrupted run's weights; every worker is told it is finished and exits 0.
  expect((await second.proc.exited).code, second.proc.out()).toBe(0);
  expect(weightsShaIn(second.proc.stdout())).toBe(referenceSha);
  for (const w of pool) {
    expect((await w.proc.exited).code, w.proc.out()).toBe(0);
  }
  expect(second.proc.out()).toMatch(/left: said bye: SIGTERM received; reassigning/);
  return second.proc.stdout();
}
