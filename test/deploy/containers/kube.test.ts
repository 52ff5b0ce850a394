// deploy/k8s under `podman kube play`, with real containers of the image
// built once for the suite. podman plays Pods, Deployments (replicas
// included), PersistentVolumeClaims, ConfigMaps and Secrets (as podman
// secrets), not Jobs or Services, so:
//
//   - the Job's pod template is played as a Pod (the pod a Job would make),
//     with the claim and the ConfigMap kustomize rendered (train.json being
//     the rehearsal's run); "rescheduled" = the pod removed and played again,
//     which mounts the same claim and resumes;
//   - the Service is stood in for by podman's DNS on the pods' network: the
//     coordinator pod bears the name the workers connect to;
//   - the worker Deployment is played as written (3 replicas), its probes
//     fetched by the test at the pod IPs (as a kubelet does: podman itself
//     turns an httpGet probe into a `curl` the image does not have);
//   - the Secrets (the run's token, the viewer token) are made as `kubectl
//     create secret` would;
//   - the played containers leave out `ports:`: podman 4.3 publishes every
//     containerPort on the host (a missing hostPort defaults to it), so
//     replicas would collide on 8081. They only name the ports the probes
//     use, which the test reads from the rendered manifests.
//
// Every name podman keeps machine-wide (pods, volumes, secrets) gets this
// run's suffix, as a namespace would keep two runs apart.
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { lastJson, ROOT, runCli, tempDir, writeJson } from '../../helpers/cli.js';
import { kubectlMissing, kustomize } from '../../helpers/kubectl.js';
import { containerPort, type Obj } from '../rehearse.js';
import { REFERENCE_CONFIG, REHEARSAL_CONFIG, STALL_STEP, weightsShaIn } from '../rehearsal-scenario.js';
import { containersReady, inspect, logLines, podman, waitForLogLine } from './podman.js';

const TAG = inject('dptrainImage');
const ready = containersReady('the podman kube play tests', kubectlMissing);
const SFX = `t${process.pid}`;
const NETWORK = `dptrain-kube-${SFX}`;
const STALL = /chaos: stalling task/;
const READY = /ready \(\d+ threads?\)/;

const pods: string[] = [];
const volumes: string[] = [];
let dir = '';

/** `podman kube play` of these documents, on the run's network (else podman makes a default one). */
async function play(file: string, docs: Obj[]): Promise<void> {
  const path = join(dir, file);
  writeFileSync(path, docs.map((d) => stringify(d)).join('---\n'));
  const r = await podman(['kube', 'play', '--network', NETWORK, path]);
  expect(r.code, `podman kube play ${file}:\n${r.stdout}${r.stderr}`).toBe(0);
}

/** The IP of a container's pod on the run's network. */
const podIp = (container: string) => inspect(container, `{{(index .NetworkSettings.Networks "${NETWORK}").IPAddress}}`);

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.text()).trim() };
}

/** GET every httpGet probe of `kinds` of the pod's container at its IP: the statuses. */
async function probe(pod: Obj, container: string, kinds: string[]): Promise<Record<string, number>> {
  const ip = await podIp(container);
  const out: Record<string, number> = {};
  for (const kind of kinds) {
    const g = pod.containers[0][kind].httpGet as Obj;
    out[kind] = (await get(`http://${ip}:${containerPort(pod, g.port)}${g.path}`)).status;
  }
  return out;
}

/** The first of the containers whose log shows `pattern` more often than `before[i]`. */
function nextToLog(names: string[], pattern: RegExp, before: number[]): Promise<string> {
  return Promise.race(names.map((n, i) =>
    waitForLogLine(n, pattern, 120_000, before[i] + 1).then(() => n, () => new Promise<string>(() => {}))));
}

afterAll(async () => {
  if (!ready) return;
  if (pods.length > 0) await podman(['pod', 'rm', '-f', '-t', '0', ...pods]);
  if (volumes.length > 0) await podman(['volume', 'rm', '-f', ...volumes]);
  await podman(['secret', 'rm', `dptrain-token-${SFX}`, `dptrain-viewer-token-${SFX}`]);
  await podman(['network', 'rm', '-f', NETWORK]);
});

describe.runIf(ready)('deploy/k8s under podman kube play', () => {
  it('the Job\'s pod with its claim and ConfigMap, the worker Deployment (3 replicas); the coordinator pod replaced, a worker scaled down and one up: the --workers 0 weights', async () => {
    dir = tempDir('dptrain-kube-');
    const ref = await runCli(['train', '--json', '--quiet', '--config', writeJson(dir, 'reference.json', REFERENCE_CONFIG), '--out', join(dir, 'ref'), '--workers', '0']);
    expect(ref.code, ref.stderr).toBe(0);

    // kubectl kustomize of deploy/k8s with the rehearsal's run as train.json.
    const copy = join(dir, 'k8s');
    cpSync(join(ROOT, 'deploy/k8s'), copy, { recursive: true });
    writeFileSync(join(copy, 'train.json'), JSON.stringify(REHEARSAL_CONFIG, null, 2));
    const objects = kustomize(copy);
    const one = (kind: string): Obj => structuredClone(objects.find((o) => o.kind === kind)!);
    const [job, deployment, claim, configMap, service] = ['Job', 'Deployment', 'PersistentVolumeClaim', 'ConfigMap', 'Service'].map(one);

    // This run's names; the image built for the suite (kustomize's `images:` would set it).
    const renamed: Record<string, string> = {};
    for (const o of [claim, configMap]) o.metadata.name = renamed[o.metadata.name] = `${o.metadata.name}-${SFX}`;
    const secretNames: Record<string, string> = { 'dptrain-token': `dptrain-token-${SFX}`, 'dptrain-viewer-token': `dptrain-viewer-token-${SFX}` };
    const coordinatorName = `${service.metadata.name}-${SFX}`; // the Service's name, borne by the pod
    const namespaced = (pod: Obj): Obj => {
      for (const v of pod.volumes as Obj[]) {
        if (v.persistentVolumeClaim !== undefined) v.persistentVolumeClaim.claimName = renamed[v.persistentVolumeClaim.claimName];
        if (v.configMap !== undefined) v.configMap.name = renamed[v.configMap.name];
        if (v.secret !== undefined) { expect(Object.keys(secretNames)).toContain(v.secret.secretName); v.secret.secretName = secretNames[v.secret.secretName]; }
        if (v.emptyDir !== undefined) { // podman names an emptyDir's volume after it, machine-wide
          const name = `${v.name}-${SFX}`;
          for (const m of pod.containers[0].volumeMounts as Obj[]) if (m.name === v.name) m.name = name;
          v.name = name;
          volumes.push(name);
        }
      }
      const c = pod.containers[0] as Obj;
      c.image = TAG;
      delete c.ports;
      c.args = (c.args as string[]).map((a) => a.replace(`ws://${service.metadata.name}:${service.spec.ports[0].port}`, `ws://${coordinatorName}:${service.spec.ports[0].port}`));
      return pod;
    };
    // The specs as rendered, for the probes' named ports.
    const coordinatorSpec = structuredClone(job.spec.template.spec) as Obj;
    const workerSpec = structuredClone(deployment.spec.template.spec) as Obj;
    const coordinatorPod: Obj = { apiVersion: 'v1', kind: 'Pod', metadata: { ...job.spec.template.metadata, name: coordinatorName }, spec: namespaced(job.spec.template.spec) };
    const playedWorkerSpec = namespaced(deployment.spec.template.spec);
    const workerDeployment = (name: string, replicas: number): Obj =>
      ({ ...deployment, metadata: { ...deployment.metadata, name }, spec: { ...deployment.spec, replicas, template: { ...deployment.spec.template, spec: playedWorkerSpec } } });
    volumes.push(claim.metadata.name, configMap.metadata.name, ...Object.values(secretNames));

    expect((await podman(['network', 'create', NETWORK])).code).toBe(0);
    // As `kubectl create secret generic dptrain-token --from-literal=token=...` (and dptrain-viewer-token) make them.
    const secret = (name: string, token: string): Obj => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', data: { token: Buffer.from(token).toString('base64') } });
    await play('secret.yaml', [secret(secretNames['dptrain-token'], 'kube-play-token'), secret(secretNames['dptrain-viewer-token'], 'kube-play-viewer')]);
    await play('coordinator.yaml', [claim, configMap, coordinatorPod]);
    pods.push(coordinatorName);
    const coordinator = `${coordinatorName}-coordinator`;
    await waitForLogLine(coordinator, /listening on ws:\/\//);
    const workersName = `dptrain-worker-${SFX}`;
    await play('workers.yaml', [workerDeployment(workersName, 3)]);
    const workers = [0, 1, 2].map((i) => `${workersName}-pod-${i}-worker`);
    pods.push(...[0, 1, 2].map((i) => `${workersName}-pod-${i}`));

    // The step is held: probes and metrics where the manifests declare them; the pod's security context in force.
    await nextToLog(workers, STALL, [0, 0, 0]);
    for (const w of workers) await waitForLogLine(w, READY);
    expect(await probe(coordinatorSpec, coordinator, ['startupProbe', 'livenessProbe', 'readinessProbe'])).toEqual({ startupProbe: 200, livenessProbe: 200, readinessProbe: 200 });
    for (const w of workers) expect(await probe(workerSpec, w, ['livenessProbe', 'readinessProbe'])).toEqual({ livenessProbe: 200, readinessProbe: 200 });
    const a = coordinatorPod.metadata.annotations as Record<string, string>;
    const metricsUrl = `http://${await podIp(coordinator)}:${a['prometheus.io/port']}${a['prometheus.io/path']}`;
    expect((await get(metricsUrl)).status).toBe(401);
    // podman 4.3 mounts a Secret's `data` as written, base64 and all (a kubelet decodes it): the token
    // the coordinator read from its file is the base64 text. (The run's token is the same text on both sides.)
    const metrics = await get(metricsUrl, { authorization: `Bearer ${Buffer.from('kube-play-viewer').toString('base64')}` });
    expect(metrics.body).toMatch(/^dptrain_phase\{phase="training"\} 1$/m);
    expect(await inspect(coordinator, '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}')).toBe('true 1000:1000');

    // The coordinator pod goes (SIGTERM: a checkpoint on the claim, exit 143)...
    expect((await podman(['stop', coordinator])).code).toBe(0);
    expect(await inspect(coordinator, '{{.State.ExitCode}}')).toBe('143');
    expect(await logLines(coordinator, /interrupted at step/)).toEqual([`dptrain: interrupted at step ${STALL_STEP - 1}; resume with: dptrain train --resume /runs/current`]);
    for (const w of workers) {
      await waitForLogLine(w, /reconnecting in/);
      expect(await probe(workerSpec, w, ['livenessProbe', 'readinessProbe'])).toEqual({ livenessProbe: 200, readinessProbe: 503 });
    }
    // ...and a new one comes (the Job's next pod): the same claim, so it resumes; the workers find it by name.
    const stalled = await Promise.all(workers.map(async (w) => (await logLines(w, STALL)).length));
    const readies = await Promise.all(workers.map(async (w) => (await logLines(w, READY)).length));
    expect((await podman(['pod', 'rm', '-f', coordinatorName])).code).toBe(0);
    await play('coordinator-again.yaml', [configMap, coordinatorPod]);
    const holder = await nextToLog(workers, STALL, stalled);
    for (const [i, w] of workers.entries()) await waitForLogLine(w, READY, 120_000, readies[i] + 1);
    expect(await logLines(coordinator, /resuming at step/)).toEqual([expect.stringContaining(`resuming at step ${STALL_STEP - 1}`)]);

    // Scaled up (one more worker pod), then down: the worker holding the step gets SIGTERM and hands its range back.
    await play('workers-more.yaml', [workerDeployment(`${workersName}-b`, 1)]);
    pods.push(`${workersName}-b-pod-0`);
    await waitForLogLine(`${workersName}-b-pod-0-worker`, READY);
    expect((await podman(['stop', holder])).code).toBe(0);
    expect(await inspect(holder, '{{.State.ExitCode}}')).toBe('0');
    expect(await logLines(holder, /handing back task/)).toHaveLength(1);

    expect((await podman(['wait', coordinator])).stdout.trim()).toBe('0');
    const out = (await podman(['logs', coordinator])).stdout;
    expect(weightsShaIn(out)).toBe(lastJson(ref.stdout).weightsSha256);
    // The workers are told the run is finished and exit 0; a Deployment's pods restart whatever
    // the exit code (podman: restart policy always), so they come back and wait for a next run.
    for (const w of workers.filter((x) => x !== holder)) {
      await waitForLogLine(w, /the coordinator says bye: the run is finished/);
      expect(await inspect(w, '{{.HostConfig.RestartPolicy.Name}}')).toBe('always');
    }
  });
});
