// What viewers of the dashboard see of the run: every message of the live
// feed passes through forViewers (live-feed.ts calls nothing else), the
// one place where addresses and host names are taken out. The coordinator's
// own log (stderr) keeps them: the organizer reads them there.
//
// - Workers: a pseudonym (the id: `thread-1`, `p3`, `b7`; the --name a
//   process gave), the kind, what it runs in (`coordinator`, `Node.js`, a
//   tab's browser family), threads, speed and counts. Never the host a hello
//   named: a process's host name can be a person's (`alice-laptop`) or hold
//   an address (`ip-10-0-0-12`), a tab's says browser, version and system.
// - Events (the log lines the dashboard lists): every host name a hello gave
//   (workers that never joined included: HostBook) becomes `‹host›` (a tab's:
//   its browser family), every IPv4 or IPv6 address `‹address›` (the bind-any
//   0.0.0.0 and :: aside: they name no one), a `#token=` or `#view=` fragment
//   loses its value, and the run's secrets never pass; then a parenthesis
//   left holding only placeholders goes: `worker p1 (vm, 127.0.0.1) joined`
//   reads `worker p1 joined`. Names are taken out as whole words wherever
//   they stand (log lines change; a name must not slip through a new one):
//   a peer that calls itself `step` garbles the viewers' events, never the
//   log, and reveals nothing.
// - Last, whatever field a message has (a config's description, one added
//   later), an address in it leaves as `‹address›`: the serialized message
//   is scrubbed once more.
import { isIP } from 'node:net';
import type { WorkerSummary } from '../../../src/dispatch/contract.js';
import type { WorkerKind } from '../../../src/protocol/messages.js';
import type { LiveEvent, LiveMessage, ViewerWorker } from './status-types.js';

export const ADDRESS = '‹address›';
export const HOST = '‹host›';
export const SECRET = '‹secret›';

/** The host names hellos gave, newest last, at most `max` (a peer could send endless new ones). */
export class HostBook {
  private readonly hosts = new Map<string, WorkerKind>();

  constructor(private readonly max = 1000) {}

  add(host: string, kind: WorkerKind): void {
    if (host.trim() === '' || kind === 'thread') return;
    this.hosts.delete(host);
    this.hosts.set(host, kind);
    if (this.hosts.size > this.max) this.hosts.delete(this.hosts.keys().next().value!);
  }

  entries(): IterableIterator<[string, WorkerKind]> {
    return this.hosts.entries();
  }
}

export interface ViewerRedaction {
  /** Never shown: the run's token and the viewer token ('' entries are skipped). */
  secrets: readonly string[];
  /** Hosts named in hellos, workers that never joined included. */
  hosts: HostBook;
}

const FAMILIES = ['Firefox', 'Edge', 'Opera', 'Chrome', 'Safari'] as const;

/** A tab's browser family from the host its hello gave ("Chrome 131 on Linux x86_64" -> "Chrome"); "browser" for anything else. */
export function browserFamily(host: string): string {
  return FAMILIES.find((f) => host.startsWith(`${f} `) || host === f) ?? 'browser';
}

/** What a worker runs in, as viewers see it. */
function runsIn(kind: WorkerKind, host: string): string {
  return kind === 'thread' ? 'coordinator' : kind === 'tab' ? browserFamily(host) : 'Node.js';
}

/** An address as text: the candidate itself, or without trailing dots and colons (the end of a sentence). */
function addressIn(candidate: string): string | null {
  for (const c of [candidate, candidate.replace(/[.:]+$/, '')]) {
    const bare = c.replace(/^\[|\]$/g, '').replace(/%[\w.-]+$/, '');
    const v = isIP(bare);
    if (v === 4 && bare !== '0.0.0.0') return c;
    if (v === 6 && bare !== '::') return c;
  }
  return null;
}

/** IPv6 (two colons at least, maybe bracketed, maybe with a zone) and IPv4 candidates, checked by isIP. */
const IPV6 = /(?<![\w:.])\[?[0-9A-Fa-f.]*:[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?\]?/g;
const IPV4 = /(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)/g;

/** Every IPv4 and IPv6 address in `text` replaced by ‹address›. */
export function scrubAddresses(text: string): string {
  const swap = (candidate: string) => {
    const found = addressIn(candidate);
    return found === null ? candidate : ADDRESS + candidate.slice(found.length);
  };
  return text.replace(IPV6, swap).replace(IPV4, swap);
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A parenthesis that held a host and an address keeps what else it held, or goes. */
function tidy(line: string): string {
  return line.replace(/ ?\(([^()]*)\)/g, (whole, inner: string) => {
    const parts = inner.split(', ');
    const kept = parts.filter((p) => p !== HOST && p !== ADDRESS);
    if (kept.length === parts.length) return whole;
    return kept.length === 0 ? '' : `${whole.startsWith(' ') ? ' ' : ''}(${kept.join(', ')})`;
  });
}

/** The host names to take out of lines (joined workers' and hellos'), each with what replaces it. */
function hostPattern(workers: readonly WorkerSummary[], book: HostBook): { re: RegExp; label: Map<string, string> } | null {
  const label = new Map<string, string>();
  for (const [host, kind] of book.entries()) label.set(host, kind === 'tab' ? browserFamily(host) : HOST);
  for (const w of workers) if (w.kind !== 'thread' && w.host.trim() !== '') label.set(w.host, w.kind === 'tab' ? browserFamily(w.host) : HOST);
  if (label.size === 0) return null;
  // Longest first, whole names only: `vm` is not taken out of `vmstat`.
  const alternatives = [...label.keys()].sort((a, b) => b.length - a.length).map(escapeRe).join('|');
  return { re: new RegExp(`(?<![\\w.-])(?:${alternatives})(?![\\w-]|\\.\\w)`, 'g'), label };
}

/** One line (an event, a name) as viewers may read it. */
export function scrubLine(line: string, secrets: readonly string[], hosts: ReturnType<typeof hostPattern>): string {
  let s = line;
  for (const secret of secrets) if (secret !== '') s = s.replaceAll(secret, SECRET);
  s = s.replace(/#(token|view)=(?:<[^<>]*>|[^\s)"]*)/g, '#$1=…');
  if (hosts !== null) s = s.replace(hosts.re, (h) => hosts.label.get(h) ?? HOST);
  return tidy(scrubAddresses(s));
}

/** A worker's summary as viewers see it. */
export function viewerWorker(w: WorkerSummary): ViewerWorker {
  return {
    id: scrubAddresses(w.id), ...(w.name === undefined ? {} : { name: scrubAddresses(w.name) }),
    kind: w.kind, runsIn: runsIn(w.kind, w.host), threads: w.threads,
    microShards: w.microShards, samplesPerSec: w.samplesPerSec, faults: w.faults, verified: w.verified, state: w.state,
  };
}

/** A message of the run status as the feed sends it to viewers: the SSE data, serialized. */
export function forViewers(m: LiveMessage<WorkerSummary>, r: ViewerRedaction): string {
  // Most updates carry no event: the pattern is built only for those that do.
  const hosts = m.events.length === 0 ? null : hostPattern(m.workers, r.hosts);
  const events = m.events.map((e): LiveEvent => ({ t: e.t, line: scrubLine(e.line, r.secrets, hosts) }));
  const workers = m.workers.map(viewerWorker);
  const out: LiveMessage = m.type === 'snapshot' ? { ...m, workers, events } : { ...m, workers, events };
  return scrubAddresses(JSON.stringify(out));
}
