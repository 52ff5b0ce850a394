// kubectl for the deployment checks: is it here, and `kubectl kustomize`
// (offline: it renders, it talks to no cluster).
import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

export const REQUIRE_KUBECTL_ENV = 'DPTRAIN_REQUIRE_KUBECTL';

/** Why kubectl cannot be used here, or undefined. */
export function kubectlMissing(): string | undefined {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'kubectl is not installed (Debian: apt-get install kubernetes-client)';
  }
}

/** Every document of a multi-document YAML text, read as YAML 1.1 as Kubernetes reads it. */
export const parseYamlDocs = (text: string): Record<string, any>[] =>
  parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS() as Record<string, any>).filter((d) => d !== null);

/** The objects `kubectl apply -k dir` would send. */
export function kustomize(dir: string): Record<string, any>[] {
  return parseYamlDocs(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' }));
}
