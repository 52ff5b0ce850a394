// A deployment recipe rehearsed on this machine: the containers of
// deploy/compose.yaml or of deploy/k8s (rendered by kustomize), read from
// the files and run as real `dptrain` processes on loopback. What a
// container engine or Kubernetes would provide is played by the smallest
// stand-in that keeps the recipe's own values in force:
//
//   - the command: the container's arguments (compose `command`, Kubernetes
//     `args` after `$(VAR)` expansion) after the image's ENTRYPOINT, which is
//     this checkout's bin/dptrain.js;
//   - the environment: compose's env_file and `environment`, Kubernetes'
//     `env` (values, Secret and ConfigMap keys);
//   - the file system: every mount path becomes a folder (or file) of this
//     machine, and every argument or variable under a mount path is
//     rewritten to it: a named volume or PersistentVolumeClaim is one folder
//     that outlives its containers, a ConfigMap or Secret volume is written
//     out from its data, an emptyDir is new for each pod; the container's
//     home (its own file system) is a folder of its own;
//   - the network: every address the recipe names (a listen address such as
//     0.0.0.0:8080, a service such as coordinator:8080) becomes 127.0.0.1
//     and a port of this machine, so several "containers" that listen on the
//     same port can run side by side.
//
// An argument that still names an absolute path off every mount, or an
// address with no stand-in, is an error: the recipe would rely on something
// the rehearsal does not provide.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../helpers/cli.js';
import { spawnCli, type Proc } from '../helpers/procs.js';

export type Obj = Record<string, any>;

/** What one container is given. */
export interface ContainerSpec {
  /** dptrain's arguments (what follows the image's ENTRYPOINT). */
  args: string[];
  env: Record<string, string>;
  mounts: Mount[];
}

export type Mount =
  | { path: string; kind: 'volume'; name: string } // named volume, PersistentVolumeClaim
  | { path: string; kind: 'bind'; source: string } // a file or folder of this machine
  | { path: string; kind: 'files'; files: Record<string, string>; mode?: number } // ConfigMap, Secret
  | { path: string; kind: 'emptyDir' };

// ---- Compose ----------------------------------------------------------------

/**
 * Compose's interpolation of one string: $$, $VAR, ${VAR}, ${VAR:-default},
 * ${VAR-default}, ${VAR:?error}, ${VAR?error}.
 */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$(?:(\$)|([A-Za-z_]\w*)|\{([A-Za-z_]\w*)(?:(:?)([-?])([^}]*))?\})/g,
    (_m, dollar: string | undefined, bare: string | undefined, name: string | undefined, colon: string, op: string, word: string) => {
      if (dollar !== undefined) return '$';
      const key = (bare ?? name)!;
      const value = env[key];
      const missing = value === undefined || (colon === ':' && value === '');
      if (op === '-') return missing ? word : value;
      if (op === '?' && missing) throw new Error(`${key}: ${word || 'required'}`);
      return value ?? '';
    });
}

function interpolateAll(value: unknown, env: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, env);
  if (Array.isArray(value)) return value.map((v) => interpolateAll(v, env));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateAll(v, env)]));
  }
  return value;
}

/** The compose file with its variables interpolated from `env`, as compose reads it. */
export function loadCompose(file: string, env: Record<string, string | undefined>): Obj {
  return interpolateAll(parse(readFileSync(file, 'utf8')), env) as Obj;
}

/** KEY=VALUE lines of an env file (blank lines and # comments skipped). */
export function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const eq = t.indexOf('=');
    if (eq < 1) throw new Error(`${file}: not KEY=VALUE: ${t}`);
    env[t.slice(0, eq)] = t.slice(eq + 1).replace(/^(["'])(.*)\1$/, '$2');
  }
  return env;
}

/** The container of compose service `name`; relative paths are relative to `dir`, the compose file's folder. */
export function composeContainer(compose: Obj, name: string, dir: string): ContainerSpec {
  const svc = compose.services?.[name] as Obj | undefined;
  if (svc === undefined) throw new Error(`compose: no service ${name}`);
  if (svc.entrypoint !== undefined) throw new Error(`compose: ${name} replaces the image's ENTRYPOINT`);
  if (!Array.isArray(svc.command)) throw new Error(`compose: ${name}: command must be a list`);
  const env: Record<string, string> = {};
  for (const f of [svc.env_file ?? []].flat() as string[]) Object.assign(env, readEnvFile(resolve(dir, f)));
  const environment = svc.environment ?? {};
  if (Array.isArray(environment)) {
    for (const kv of environment as string[]) env[kv.split('=')[0]] = kv.slice(kv.indexOf('=') + 1);
  } else {
    Object.assign(env, environment);
  }
  const mounts: Mount[] = ((svc.volumes ?? []) as string[]).map((v) => {
    const [source, path] = v.split(':');
    if (/^[./~]/.test(source)) return { path, kind: 'bind', source: resolve(dir, source) };
    if (!(source in (compose.volumes ?? {}))) throw new Error(`compose: ${name} mounts volume ${source}, which is not declared`);
    return { path, kind: 'volume', name: source };
  });
  return { args: svc.command.map(String), env, mounts };
}

/** The host port that compose service `svc` publishes its container port `port` on. */
export function publishedPort(svc: Obj, port: number): number {
  for (const p of (svc.ports ?? []) as string[]) {
    const [host, container] = String(p).split(':').slice(-2);
    if (Number(container) === port) return Number(host);
  }
  throw new Error(`compose: container port ${port} is not published`);
}

// ---- Kubernetes --------------------------------------------------------------

/** `$(VAR)` in a container's args, as the kubelet expands it ($$ escapes; unknown names stay). */
export function expandK8s(text: string, env: Record<string, string>): string {
  return text.replace(/\$\$|\$\(([A-Za-z_][\w.-]*)\)/g, (m, name: string | undefined) =>
    (name === undefined ? '$' : env[name] ?? m));
}

/**
 * The first container of a pod spec. `secrets` stands for the Secrets made
 * outside the kustomization (kubectl create secret), by name then key.
 */
export function podContainer(pod: Obj, objects: Obj[], secrets: Record<string, Record<string, string>>): ContainerSpec {
  const c = pod.containers[0] as Obj;
  if (c.command !== undefined) throw new Error(`${c.name}: command replaces the image's ENTRYPOINT`);
  const configMap = (name: string): Record<string, string> => {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    if (cm === undefined) throw new Error(`${c.name}: no ConfigMap ${name}`);
    return cm.data;
  };
  const secret = (name: string): Record<string, string> => {
    const s = secrets[name];
    if (s === undefined) throw new Error(`${c.name}: no Secret ${name}`);
    return s;
  };
  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as Obj[]) {
    const from = e.valueFrom as Obj | undefined;
    let value: string | undefined;
    if (from === undefined) value = expandK8s(String(e.value ?? ''), env);
    else if (from.secretKeyRef !== undefined) value = secret(from.secretKeyRef.name)[from.secretKeyRef.key];
    else if (from.configMapKeyRef !== undefined) value = configMap(from.configMapKeyRef.name)[from.configMapKeyRef.key];
    // The pod's own address (the downward API): every pod of the rehearsal is on this machine's loopback.
    else if (from.fieldRef?.fieldPath === 'status.podIP') value = '127.0.0.1';
    if (value === undefined) throw new Error(`${c.name}: env ${e.name} has no value here`);
    env[e.name] = value;
  }
  const mounts: Mount[] = ((c.volumeMounts ?? []) as Obj[]).map((m) => {
    const v = (pod.volumes as Obj[]).find((x) => x.name === m.name);
    if (v === undefined) throw new Error(`${c.name}: volumeMount ${m.name} names no volume`);
    if (v.persistentVolumeClaim !== undefined) {
      const claim = v.persistentVolumeClaim.claimName as string;
      if (!objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === claim)) throw new Error(`${c.name}: no PersistentVolumeClaim ${claim}`);
      return { path: m.mountPath, kind: 'volume', name: claim };
    }
    if (v.configMap !== undefined) return { path: m.mountPath, kind: 'files', files: configMap(v.configMap.name), mode: v.configMap.defaultMode };
    if (v.secret !== undefined) return { path: m.mountPath, kind: 'files', files: secret(v.secret.secretName), mode: v.secret.defaultMode };
    if (v.emptyDir !== undefined) return { path: m.mountPath, kind: 'emptyDir' };
    throw new Error(`${c.name}: volume ${m.name} is of a kind the rehearsal does not provide`);
  });
  return { args: (c.args as string[]).map((a) => expandK8s(String(a), env)), env, mounts };
}

/** The container port named (or numbered) `port` in a pod spec's first container. */
export function containerPort(pod: Obj, port: string | number): number {
  if (typeof port === 'number') return port;
  const p = ((pod.containers[0].ports ?? []) as Obj[]).find((x) => x.name === port);
  if (p === undefined) throw new Error(`no container port named ${port}`);
  return p.containerPort;
}

// ---- This machine ------------------------------------------------------------

/** A port for a recipe's fixed port (see test/helpers/ports.ts: no bind-close-reuse race). */
export { freePort } from '../helpers/ports.js';

/** A container instance: its own home (file system) and emptyDirs; started again, it keeps them. */
export interface Instance {
  readonly name: string;
  readonly home: string;
  /** The host folder (or file) of each mount path. */
  readonly paths: Map<string, string>;
}

/** The machine the recipe is rehearsed on: named volumes live as long as it does. */
export class Machine {
  private readonly volumes = new Map<string, string>();
  private serial = 0;

  constructor(readonly root: string) {}

  private dir(prefix: string): string {
    return mkdtempSync(join(this.root, `${prefix}-`));
  }

  /** A new container (or pod) for `spec`: its mounts made real. */
  create(name: string, spec: ContainerSpec): Instance {
    const base = this.dir(`${name}-${++this.serial}`);
    const home = join(base, 'home');
    mkdirSync(home);
    const paths = new Map<string, string>();
    for (const m of spec.mounts) {
      let host: string;
      switch (m.kind) {
        case 'volume':
          if (!this.volumes.has(m.name)) this.volumes.set(m.name, this.dir(`volume-${m.name}`));
          host = this.volumes.get(m.name)!;
          break;
        case 'bind':
          host = m.source;
          break;
        case 'emptyDir':
          host = this.dir(`${name}-emptydir`);
          break;
        case 'files':
          host = this.dir(`${name}-files`);
          for (const [file, text] of Object.entries(m.files)) {
            writeFileSync(join(host, file), text);
            if (m.mode !== undefined) chmodSync(join(host, file), m.mode);
          }
          break;
      }
      paths.set(m.path, host);
    }
    return { name, home, paths };
  }

  /**
   * Starts `spec` in `instance` as a dptrain process. `addresses` maps each
   * address the recipe names (e.g. `0.0.0.0:8080`, `coordinator:8080`) to
   * one of this machine (`127.0.0.1:PORT`).
   */
  start(instance: Instance, spec: ContainerSpec, addresses: Record<string, string>): Proc {
    const onHost = (value: string, what: string): string => {
      let v = value;
      for (const [from, to] of Object.entries(addresses)) v = v.split(from).join(to);
      // Longest mount path first: /runs/current on /runs, not on /.
      const mounts = [...instance.paths.entries()].sort((a, b) => b[0].length - a[0].length);
      if (isAbsolute(v)) {
        const hit = mounts.find(([path]) => v === path || v.startsWith(path + '/'));
        if (hit === undefined) throw new Error(`${instance.name}: ${what} ${value} is on no mount: the container's own file system`);
        v = hit[1] + v.slice(hit[0].length);
      }
      if (/(^|[/@])0\.0\.0\.0:\d+/.test(v) || /^wss?:\/\/(?!127\.0\.0\.1:)/.test(v)) {
        throw new Error(`${instance.name}: ${what} ${value}: no stand-in for that address`);
      }
      return v;
    };
    const args = spec.args.map((a) => onHost(a, 'argument'));
    const env: Record<string, string | undefined> = {
      // Nothing of the tester's own environment that dptrain reads leaks in.
      DPTRAIN_TOKEN: undefined, DPTRAIN_CACHE: undefined, DPTRAIN_KERNELS: undefined, XDG_CACHE_HOME: undefined,
      HOME: instance.home,
    };
    for (const [k, v] of Object.entries(spec.env)) env[k] = onHost(v, `$${k}`);
    return spawnCli(args, env, instance.name, [], instance.home);
  }
}

/** The image's HEALTHCHECK command (deploy/Dockerfile), with the image's /app as this checkout. */
export function imageHealthcheck(): string[] {
  const dockerfile = readFileSync(join(ROOT, 'deploy/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const m = /^HEALTHCHECK\b.*?\bCMD\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (m === null) throw new Error('deploy/Dockerfile: no HEALTHCHECK CMD [...]');
  const argv = JSON.parse(m[1]) as string[];
  if (argv[0] !== 'node') throw new Error(`the HEALTHCHECK runs ${argv[0]}, not node`);
  return [process.execPath, ...argv.slice(1).map((a) => (a.startsWith('/app/') ? join(ROOT, a.slice('/app/'.length)) : a))];
}
