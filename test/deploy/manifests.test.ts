// The deployment recipes, checked offline: deploy/compose.yaml against the
// Compose Specification's JSON schema, deploy/k8s rendered by kustomize and
// every object against the Kubernetes API schemas, and what no schema sees:
// the names, ports, paths and flags that must agree across the files.
//
// The Compose schema is the Compose Specification's schema/compose-spec.json,
// as shipped by the dclint package (schemas/compose.schema.json, synced from
// the compose-spec repository by its update-compose-schema script). The
// Kubernetes schemas are kubernetes-models' (generated from the Kubernetes
// OpenAPI spec). Neither schema rejects every typo: Kubernetes' own schemas
// allow unknown fields (a cluster's `kubectl apply --validate=strict` does not).
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import { readConfigFile } from '../../coordinator/run/config.js';
import { ROOT } from '../helpers/cli.js';
import { kubectlMissing, kustomize, parseYamlDocs, REQUIRE_KUBECTL_ENV } from '../helpers/kubectl.js';
import { loadCompose as loadInterpolated } from './rehearse.js';

const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');

type Obj = Record<string, any>;

// ---- Compose --------------------------------------------------------------

function composeSchemaValidator() {
  const require = createRequire(import.meta.url);
  const file = join(require.resolve('dclint/package.json'), '..', 'schemas', 'compose.schema.json');
  // Its $schema names draft-07 by an https URL that ajv does not know; the keywords are draft-07's.
  // strictTypes off: the schema leaves `type: object` implicit in places, which is valid JSON Schema.
  const { $schema: _draft, ...schema } = JSON.parse(readFileSync(file, 'utf8')) as Obj;
  return new Ajv({ allErrors: true, allowUnionTypes: true, strictTypes: false }).compile(schema);
}
const validateCompose = composeSchemaValidator();

function composeErrors(doc: unknown): string[] {
  return validateCompose(doc) ? [] : validateCompose.errors!.map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

const loadCompose = (): Obj => parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'));
/** As compose reads it with none of its variables set: every default in force. */
const loadDefaults = (): Obj => loadInterpolated(join(DEPLOY, 'compose.yaml'), {});

/** The value after `flag` in an argument list. */
function arg(args: string[], flag: string): string {
  const i = args.indexOf(flag);
  if (i < 0 || i + 1 >= args.length) throw new Error(`${flag} is missing from ${JSON.stringify(args)}`);
  return args[i + 1];
}

const listenPort = (args: string[]) => Number(arg(args, '--listen').split(':').at(-1));

describe('deploy/compose.yaml', () => {
  it('validates against the Compose Specification schema', () => {
    expect(composeErrors(loadCompose())).toEqual([]);
  });

  it('the schema rejects a misspelt key and a wrongly typed value', () => {
    const typo = loadCompose();
    typo.services.worker.comand = typo.services.worker.command;
    expect(composeErrors(typo)).toContainEqual(expect.stringContaining('"additionalProperty":"comand"'));
    const wrongType = loadCompose();
    wrongType.services.worker.deploy.replicas = [2];
    expect(composeErrors(wrongType).join('\n')).toContain('/services/worker/deploy/replicas must be');
  });

  it('coordinator and workers agree: port, token, image; the run folder is on a volume; the config file exists', () => {
    const { services, volumes } = loadDefaults();
    const c = services.coordinator, w = services.worker;
    const port = listenPort(c.command);
    expect(arg(c.command, '--listen')).toBe(`0.0.0.0:${port}`);
    expect(c.ports).toContain(`${port}:${port}`);
    expect(arg(w.command, '--connect')).toBe(`ws://coordinator:${port}`);
    expect(c.command).toContain('--auto-resume');
    expect(w.image).toBe(c.image);
    expect(c.image).toBe('dptrain:latest');
    expect([c.env_file, w.env_file]).toEqual(['dptrain.env', 'dptrain.env']); // DPTRAIN_TOKEN
    // The workers' health port, for the image's HEALTHCHECK; not the coordinator's.
    expect(arg(w.command, '--health-listen')).toMatch(/^0\.0\.0\.0:\d+$/);
    expect(listenPort(['--listen', arg(w.command, '--health-listen')])).not.toBe(port);
    expect(w.deploy.replicas).toBe('2');
    const out = arg(c.command, '--out');
    expect(c.volumes).toContain('runs:/runs');
    expect(out.startsWith('/runs/')).toBe(true);
    expect(Object.keys(volumes)).toEqual(['runs']);
    const config = (c.volumes as string[]).find((v) => v.endsWith(`:${arg(c.command, '--config')}:ro`))!;
    expect(config).toBeDefined();
    expect(existsSync(join(DEPLOY, config.split(':')[0]))).toBe(true);
  });
});

// ---- Kubernetes -----------------------------------------------------------

type Model = new (data: Obj) => { validate(): void };
const MODELS: Record<string, Record<string, unknown>> = { v1: core, 'apps/v1': apps, 'batch/v1': batch };

/** Validate one object against the Kubernetes API schema of its apiVersion and kind; throws naming what is wrong. */
function validateK8s(obj: Obj): void {
  const model = MODELS[obj.apiVersion]?.[obj.kind] as Model | undefined;
  if (model === undefined) throw new Error(`${obj.apiVersion} ${obj.kind}: not a known API version and kind`);
  new model(obj).validate();
}

/**
 * The objects that `kubectl apply -k deploy/k8s` would send. Without kubectl,
 * the kustomization's resource files as written (no generated ConfigMap),
 * with the reason printed, or thrown when DPTRAIN_REQUIRE_KUBECTL=1.
 */
function renderK8s(): { objects: Obj[]; rendered: boolean } {
  const why = kubectlMissing();
  if (why === undefined) {
    return { objects: kustomize(K8S), rendered: true };
  }
  if (process.env[REQUIRE_KUBECTL_ENV] === '1') throw new Error(`${REQUIRE_KUBECTL_ENV}=1 but ${why}`);
  console.log(`not rendering deploy/k8s with kustomize: ${why}; validating its resource files as written`);
  const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
  return { objects: (kustomization.resources as string[]).flatMap((f) => parseYamlDocs(readFileSync(join(K8S, f), 'utf8'))), rendered: false };
}

const { objects, rendered } = renderK8s();
const find = (kind: string, name: string): Obj => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (o === undefined) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return o;
};
const clone = (o: Obj): Obj => structuredClone(o);

describe('deploy/k8s', () => {
  it('renders with kustomize into a coordinator Job, its Service and claim, a worker Deployment and the config ConfigMap (the token Secrets are made outside)', () => {
    const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    const expected = ['Deployment/dptrain-worker', 'Job/dptrain-coordinator', 'PersistentVolumeClaim/dptrain-runs', 'Service/dptrain-coordinator'];
    if (rendered) {
      expect(kinds.filter((k) => !k.startsWith('ConfigMap/'))).toEqual(expected);
      expect(kinds.find((k) => k.startsWith('ConfigMap/'))).toMatch(/^ConfigMap\/dptrain-config-[a-z0-9]+$/);
    } else {
      expect(kinds).toEqual(expected);
    }
  });

  it('every object validates against the Kubernetes API schemas', () => {
    for (const o of objects) expect(() => validateK8s(o), `${o.kind}/${o.metadata.name}`).not.toThrow();
  });

  it('the schemas reject a wrongly typed field, a missing required one and an unknown kind', () => {
    const d = clone(find('Deployment', 'dptrain-worker'));
    d.spec.replicas = 'two';
    expect(() => validateK8s(d)).toThrow('replicas must be integer');
    const j = clone(find('Job', 'dptrain-coordinator'));
    delete j.spec.template.spec.containers[0].livenessProbe.httpGet.port;
    expect(() => validateK8s(j)).toThrow('must have required property port');
    expect(() => validateK8s({ ...d, kind: 'Deploymnet' })).toThrow('apps/v1 Deploymnet: not a known API version and kind');
  });

  it('the names, ports, paths and flags agree across the manifests', () => {
    const job = find('Job', 'dptrain-coordinator');
    const svc = find('Service', 'dptrain-coordinator');
    const dep = find('Deployment', 'dptrain-worker');
    const pod = job.spec.template;
    const c = pod.spec.containers[0], w = dep.spec.template.spec.containers[0];

    // The Service selects the coordinator pod and forwards to its --listen port.
    for (const [k, v] of Object.entries(svc.spec.selector)) expect(pod.metadata.labels[k]).toBe(v);
    const port = listenPort(c.args);
    expect(c.ports).toEqual([{ name: 'http', containerPort: port }]);
    expect(svc.spec.ports).toEqual([{ name: 'http', port, targetPort: 'http' }]);
    // Workers reach it by the Service's name.
    expect(arg(w.args, '--connect')).toBe(`ws://${svc.metadata.name}:${port}`);
    expect(w.image).toBe(c.image);
    // Probes on the coordinator's port: alive /healthz, ready /readyz.
    expect([c.startupProbe.httpGet, c.livenessProbe.httpGet, c.readinessProbe.httpGet]).toEqual([
      { path: '/healthz', port: 'http' }, { path: '/healthz', port: 'http' }, { path: '/readyz', port: 'http' }]);
    // The workers' on their --health-listen port.
    const health = listenPort(['--listen', arg(w.args, '--health-listen')]);
    expect(arg(w.args, '--health-listen')).toBe(`0.0.0.0:${health}`);
    // And the collective's peer port on every interface: a worker advertises the address it reaches the
    // coordinator from (its pod's IP), so no downward API is needed (podman kube play has none for status.podIP).
    const peer = listenPort(['--listen', arg(w.args, '--peer-listen')]);
    expect(arg(w.args, '--peer-listen')).toBe(`0.0.0.0:${peer}`);
    expect(w.args).not.toContain('--advertise');
    expect(w.ports).toEqual([{ name: 'health', containerPort: health }, { name: 'peer', containerPort: peer }]);
    expect([w.livenessProbe.httpGet, w.readinessProbe.httpGet]).toEqual([{ path: '/healthz', port: 'health' }, { path: '/readyz', port: 'health' }]);

    // Every volume names an object of the kustomization; every path flag lies in its mount.
    const mountOf = (container: Obj, spec: Obj, path: string): Obj => {
      const m = (container.volumeMounts as Obj[]).find((v) => path.startsWith(v.mountPath + '/'));
      if (m === undefined) throw new Error(`${path} is on no volume of ${container.name}`);
      return (spec.volumes as Obj[]).find((v) => v.name === m.name)!;
    };
    expect(mountOf(c, pod.spec, arg(c.args, '--out')).persistentVolumeClaim.claimName).toBe(find('PersistentVolumeClaim', 'dptrain-runs').metadata.name);
    const configVolume = mountOf(c, pod.spec, arg(c.args, '--config'));
    if (rendered) expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === configVolume.configMap.name)).toBe(true);
    for (const [container, spec] of [[c, pod.spec], [w, dep.spec.template.spec]]) {
      // The Secret made with `kubectl create secret generic dptrain-token --from-literal=token=...`;
      // optional: false said out loud, which podman kube play 4.3 needs.
      expect(mountOf(container, spec, arg(container.args, '--token-file')).secret).toEqual({ secretName: 'dptrain-token', defaultMode: 0o440, optional: false });
      expect(arg(container.args, '--token-file').endsWith('/token')).toBe(true);
      // A read-only root file system: the dataset cache goes to an emptyDir.
      expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
      const cache = (container.env as Obj[]).find((e) => e.name === 'DPTRAIN_CACHE')!.value;
      expect(mountOf(container, spec, cache + '/x').emptyDir).toEqual({});
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000 });
      expect(Object.keys(container.resources).sort()).toEqual(['limits', 'requests']);
    }
    expect(c.args).toContain('--auto-resume');
    // The viewer token (read-only: the dashboard, /live, /metrics): the coordinator's alone, from its own Secret.
    expect(mountOf(c, pod.spec, arg(c.args, '--viewer-token-file')).secret).toEqual({ secretName: 'dptrain-viewer-token', defaultMode: 0o440, optional: false });
    expect(w.args).not.toContain('--viewer-token-file');
    expect((dep.spec.template.spec.volumes as Obj[]).some((v) => v.secret?.secretName === 'dptrain-viewer-token')).toBe(false);
  });

  it('the config it mounts is a valid dptrain config', () => {
    expect(readConfigFile(join(K8S, 'train.json')).checkpointEvery).toBeGreaterThan(0);
  });
});
