// Several machines on one: Linux network namespaces joined by veth pairs to
// a bridge in the root namespace, which plays the LAN switch. The
// coordinator runs in the root namespace on the bridge's address (10.77.0.1,
// like a host on the LAN); each worker host is a namespace with its own
// address, its own link (which a test can cut or shape with tc), and its own
// loopback. Needs root and iproute2; netnsProblem() says why not, when not.
// Used by test/cluster/netns.test.ts and `npm run bench:cluster -- --netns RATE`.
import { execFileSync } from 'node:child_process';

export const COORDINATOR_IP = '10.77.0.1';

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why namespaces cannot be used here, or null when they can. */
export function netnsProblem(): string | null {
  if (process.getuid?.() !== 0) return 'not root (network namespaces need CAP_NET_ADMIN)';
  try {
    run('ip', ['-V']);
    run('tc', ['-V']);
  } catch {
    return 'iproute2 (ip, tc) is not installed';
  }
  const probe = `dptprobe${process.pid % 10000}`;
  try {
    run('ip', ['netns', 'add', probe]);
    run('ip', ['netns', 'del', probe]);
  } catch (err) {
    return `ip netns add failed: ${(err as Error).message.split('\n')[0]}`;
  }
  return null;
}

export interface Host {
  readonly name: string;
  /** The namespace, for `ip netns exec`. */
  readonly ns: string;
  readonly ip: string;
  /** The host-side end of its veth pair (on the bridge): cut or shape it here. */
  readonly link: string;
  /** Prefix that runs a command on this host. */
  readonly exec: string[];
}

export class VirtualLan {
  private readonly hosts: Host[] = [];
  private readonly bridge: string;

  /** `tag`: a short unique tag (interface names have at most 15 characters). */
  constructor(private readonly tag: string) {
    this.bridge = `dpt${tag}br`;
    this.destroy(); // leftovers of a killed earlier run
    run('ip', ['link', 'add', 'name', this.bridge, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${COORDINATOR_IP}/24`, 'dev', this.bridge]);
    run('ip', ['link', 'set', this.bridge, 'up']);
  }

  addHost(name: string): Host {
    const i = this.hosts.length + 1;
    const ns = `dpt${this.tag}n${i}`;
    const link = `dpt${this.tag}h${i}`;
    const peer = `dpt${this.tag}p${i}`;
    const ip = `10.77.0.${10 + i}`;
    run('ip', ['netns', 'add', ns]);
    run('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', peer]);
    run('ip', ['link', 'set', peer, 'netns', ns]);
    run('ip', ['link', 'set', link, 'master', this.bridge]);
    run('ip', ['link', 'set', link, 'up']);
    run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', peer]);
    run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up']);
    run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const host: Host = { name, ns, ip, link, exec: ['ip', 'netns', 'exec', ns] };
    this.hosts.push(host);
    return host;
  }

  /** Pulls the host's cable: its link goes down (packets to and from it are lost, nobody is told). */
  cut(host: Host): void {
    run('ip', ['link', 'set', host.link, 'down']);
  }

  restore(host: Host): void {
    run('ip', ['link', 'set', host.link, 'up']);
  }

  /** Limits the host's link to `rate` (tc tbf, e.g. '1gbit') in both directions. */
  shape(host: Host, rate: string): void {
    run('tc', ['qdisc', 'replace', 'dev', host.link, 'root', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms']);
    run('ip', ['netns', 'exec', host.ns, 'tc', 'qdisc', 'replace', 'dev', host.link.replace(/h(\d+)$/, 'p$1'), 'root', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms']);
  }

  destroy(): void {
    const quiet = (args: string[]) => { try { run('ip', args); } catch { /* already gone */ } };
    for (let i = 1; i <= 8; i++) quiet(['netns', 'del', `dpt${this.tag}n${i}`]);
    for (let i = 1; i <= 8; i++) quiet(['link', 'del', `dpt${this.tag}h${i}`]);
    quiet(['link', 'del', this.bridge]);
    this.hosts.length = 0;
  }
}
