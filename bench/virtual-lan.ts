// Several machines on one: Linux network namespaces joined by veth pairs to
// a bridge in the root namespace, which plays the LAN switch. Each worker
// host is a namespace with its own address, its own link (which a test can
// cut or shape with tc), and its own loopback. The coordinator runs in the
// root namespace, at 10.77.0.1, in one of two ways:
//   - on the bridge itself (the default): it reaches each worker through
//     that worker's own link, so a shaped LAN still gives it W links' worth
//     of bandwidth (fine for faults: test/cluster/netns.test.ts);
//   - behind a link of its own (`coordinatorLink`): a veth pair whose one
//     end holds its address and whose other end is a port of the bridge,
//     shaped like every worker's, as one NIC on a switch is
//     (`npm run bench:cluster -- --netns RATE`: the star's hub then has the
//     bandwidth a real machine has).
// Every link's bridge-side end sits in the root namespace, so its byte
// counters (linkBytes) are the bytes that host sent and received.
// Needs root and iproute2; netnsProblem() says why not, when not.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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
  /** The coordinator's own link (coordinatorLink), as a Host whose exec is this namespace's. */
  readonly coordinator: Host | null = null;

  /** `tag`: a short unique tag (interface names have at most 15 characters). */
  constructor(private readonly tag: string, opts: { coordinatorLink?: boolean } = {}) {
    this.bridge = `dpt${tag}br`;
    this.destroy(); // leftovers of a killed earlier run
    run('ip', ['link', 'add', 'name', this.bridge, 'type', 'bridge']);
    if (opts.coordinatorLink === true) {
      // The coordinator's NIC: dpt<tag>c0 holds its address, dpt<tag>h0 is its port on the switch.
      const nic = `dpt${tag}c0`;
      const port = `dpt${tag}h0`;
      run('ip', ['link', 'add', nic, 'type', 'veth', 'peer', 'name', port]);
      run('ip', ['link', 'set', port, 'master', this.bridge]);
      run('ip', ['link', 'set', port, 'up']);
      run('ip', ['addr', 'add', `${COORDINATOR_IP}/24`, 'dev', nic]);
      run('ip', ['link', 'set', nic, 'up']);
      // NOTE: the root namespace would answer ARP for its address on the bridge too (Linux's weak host
      // model), and the hosts' packets would reach it through the bridge device, past its own link.
      run('sysctl', ['-qw', `net.ipv4.conf.${this.bridge}.arp_ignore=1`]);
      this.coordinator = { name: 'coordinator', ns: '', ip: COORDINATOR_IP, link: port, exec: [] };
    } else {
      run('ip', ['addr', 'add', `${COORDINATOR_IP}/24`, 'dev', this.bridge]);
    }
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
    const tbf = ['root', 'tbf', 'rate', rate, 'burst', '256kb', 'latency', '50ms'];
    run('tc', ['qdisc', 'replace', 'dev', host.link, ...tbf]);
    if (host === this.coordinator) run('tc', ['qdisc', 'replace', 'dev', `dpt${this.tag}c0`, ...tbf]);
    else run('ip', ['netns', 'exec', host.ns, 'tc', 'qdisc', 'replace', 'dev', host.link.replace(/h(\d+)$/, 'p$1'), ...tbf]);
  }

  /**
   * Bytes the host has sent and received on its link so far (frames on the
   * wire: payloads, WebSocket, TCP and IP headers, ACKs), read from the
   * bridge-side end's counters: what it transmits the host received.
   */
  linkBytes(host: Host): { sent: number; received: number } {
    const stat = (name: string) => Number(readFileSync(`/sys/class/net/${host.link}/statistics/${name}`, 'utf8'));
    return { sent: stat('rx_bytes'), received: stat('tx_bytes') };
  }

  destroy(): void {
    const quiet = (args: string[]) => { try { run('ip', args); } catch { /* already gone */ } };
    for (let i = 1; i <= 8; i++) quiet(['netns', 'del', `dpt${this.tag}n${i}`]);
    for (let i = 0; i <= 8; i++) quiet(['link', 'del', `dpt${this.tag}h${i}`]);
    quiet(['link', 'del', this.bridge]);
    this.hosts.length = 0;
  }
}
