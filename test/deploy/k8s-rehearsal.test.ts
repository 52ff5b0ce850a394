// deploy/k8s rehearsed on loopback (rehearse.ts): `kubectl kustomize` renders
// a copy of the kustomization whose train.json is the rehearsal's run (as a
// user puts their config there); the Job's pod template and the worker
// Deployment's run as real processes with their args, env, volumes (the
// PersistentVolumeClaim one folder for every coordinator pod, the ConfigMap
// and the Secrets written out, emptyDirs new per pod) and ports; the
// Service's name reaches the coordinator; the probes and the metrics are
// fetched at the paths and ports the manifests declare (the metrics with the
// viewer token). The Secrets are made outside the kustomization (`kubectl
// create secret`), so the test makes them.
//
// Skipped, saying why, without kubectl (DPTRAIN_REQUIRE_KUBECTL=1 makes that a failure).
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, expect, it } from 'vitest';
import { lastJson, ROOT, runCli, tempDir, writeJson } from '../helpers/cli.js';
import { kubectlMissing, kustomize, REQUIRE_KUBECTL_ENV } from '../helpers/kubectl.js';
import { killAll } from '../helpers/procs.js';
import { containerPort, freePort, Machine, podContainer, type Obj } from './rehearse.js';
import { httpProbe, REFERENCE_CONFIG, REHEARSAL_CONFIG, rehearseRun, type Container, type Probe } from './rehearsal-scenario.js';

const dir = tempDir('dptrain-k8s-rehearsal-');
afterEach(killAll);
afterAll(killAll);

const missing = kubectlMissing();
if (missing !== undefined) {
  if (process.env[REQUIRE_KUBECTL_ENV] === '1') throw new Error(`${REQUIRE_KUBECTL_ENV}=1 but ${missing}`);
  console.log(`skipping the Kubernetes rehearsal: ${missing}`);
}

/** deploy/k8s rendered with `config` as its train.json. */
function render(config: unknown): Obj[] {
  const copy = join(dir, 'k8s');
  cpSync(join(ROOT, 'deploy/k8s'), copy, { recursive: true });
  writeFileSync(join(copy, 'train.json'), JSON.stringify(config, null, 2));
  return kustomize(copy);
}

/** The host ports of a pod's listen addresses (0.0.0.0:PORT in its args), chosen now or given. */
async function listenPorts(args: string[], given: Record<number, number> = {}): Promise<Record<number, number>> {
  const ports: Record<number, number> = {};
  for (const a of args) {
    const m = /^0\.0\.0\.0:(\d+)$/.exec(a);
    if (m !== null) ports[Number(m[1])] = given[Number(m[1])] ?? await freePort();
  }
  return ports;
}

/** A pod's listen addresses at their host ports (a worker advertises its peer port at the address it reaches the coordinator from). */
const addressesOf = (ports: Record<number, number>) =>
  Object.fromEntries(Object.entries(ports).flatMap(([c, h]) => [[`0.0.0.0:${c}`, `127.0.0.1:${h}`], [`127.0.0.1:${c}`, `127.0.0.1:${h}`]]));

/** The HTTP probes of a container, at this pod's host ports. */
async function probes(pod: Obj, ports: Record<number, number>, kinds: string[]): Promise<Probe[]> {
  const c = pod.containers[0] as Obj;
  const out: Probe[] = [];
  for (const kind of kinds) {
    const get = c[kind]?.httpGet as Obj | undefined;
    if (get === undefined) throw new Error(`${c.name}: no ${kind}.httpGet`);
    const port = ports[containerPort(pod, get.port)];
    if (port === undefined) throw new Error(`${c.name}: ${kind} on port ${get.port}, which it does not listen on`);
    out.push(await httpProbe(`${c.name} ${kind}`, `http://127.0.0.1:${port}${get.path}`));
  }
  return out;
}

it.skipIf(missing !== undefined)('deploy/k8s: the Job, its Service and claim, 3 worker replicas; the coordinator pod replaced, a worker replaced: the --workers 0 weights', async () => {
  const ref = await runCli(['train', '--json', '--quiet', '--config', writeJson(dir, 'reference.json', REFERENCE_CONFIG), '--out', join(dir, 'ref'), '--workers', '0']);
  expect(ref.code, ref.stderr).toBe(0);

  const objects = render(REHEARSAL_CONFIG);
  const find = (kind: string, name: string): Obj => {
    const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
    if (o === undefined) throw new Error(`no ${kind} ${name}`);
    return o;
  };
  const job = find('Job', 'dptrain-coordinator');
  const deployment = find('Deployment', 'dptrain-worker');
  const service = find('Service', 'dptrain-coordinator');
  const coordinatorPod = job.spec.template.spec as Obj;
  const workerPod = deployment.spec.template.spec as Obj;
  // As `kubectl create secret generic dptrain-token --from-literal=token=...` makes them.
  const secrets = { 'dptrain-token': { token: 'k8s-rehearsal-token' }, 'dptrain-viewer-token': { token: 'k8s-rehearsal-viewer' } };
  const coordinator = podContainer(coordinatorPod, objects, secrets);
  const worker = podContainer(workerPod, objects, secrets);

  // The Service: selects the Job's pods, forwards its port to their container port.
  for (const [k, v] of Object.entries(service.spec.selector as Record<string, string>)) expect(job.spec.template.metadata.labels[k]).toBe(v);
  const servicePort = service.spec.ports[0] as Obj;
  const target = containerPort(coordinatorPod, servicePort.targetPort);
  // The coordinator pod's host ports stay the same across its pods, as the Service's address does.
  const coordinatorPorts = await listenPorts(coordinator.args);
  expect(Object.keys(coordinatorPorts).map(Number)).toContain(target);
  const serviceAt = `127.0.0.1:${coordinatorPorts[target]}`;

  // Prometheus finds the metrics where the pod's annotations say.
  const annotations = job.spec.template.metadata.annotations as Record<string, string>;
  const metricsPort = coordinatorPorts[Number(annotations['prometheus.io/port'])];
  expect(metricsPort).toBeDefined();

  expect(deployment.spec.replicas).toBeGreaterThanOrEqual(1);
  const machine = new Machine(dir);
  let pods = 0;
  const stdout = await rehearseRun({
    metricsUrl: `http://127.0.0.1:${metricsPort}${annotations['prometheus.io/path']}`,
    viewerToken: 'k8s-rehearsal-viewer',
    async startCoordinator(): Promise<Container> {
      // A new pod each time (the Job's next pod): new emptyDirs, the same claim.
      const pod = machine.create(`dptrain-coordinator-${++pods}`, coordinator);
      const proc = machine.start(pod, coordinator, addressesOf(coordinatorPorts));
      await proc.waitFor(/listening on ws:\/\//);
      return {
        proc,
        alive: await probes(coordinatorPod, coordinatorPorts, ['startupProbe', 'livenessProbe']),
        ready: await probes(coordinatorPod, coordinatorPorts, ['readinessProbe']),
      };
    },
    async startWorker(): Promise<Container> {
      const pod = machine.create(`dptrain-worker-${++pods}`, worker);
      const ports = await listenPorts(worker.args);
      const proc = machine.start(pod, worker, { ...addressesOf(ports), [`${service.metadata.name}:${servicePort.port}`]: serviceAt });
      await proc.waitFor(/health on http:/);
      return {
        proc,
        alive: await probes(workerPod, ports, ['livenessProbe']),
        ready: await probes(workerPod, ports, ['readinessProbe']),
      };
    },
    // kubectl scale deployment/dptrain-worker --replicas=3
  }, 3, lastJson(ref.stdout).weightsSha256);
  expect(stdout.match(/^worker p\d+ \(process /gm)).toHaveLength(4);
});
