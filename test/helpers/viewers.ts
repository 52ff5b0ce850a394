// What the viewer tests read and look for: the /live stream of a real
// coordinator (read until a pattern shows, then let go), and addresses in a
// text, found by Node's own parser (isIP) rather than by the code under test.
import { isIP } from 'node:net';

/** GET /live: the status, and the stream's text up to the first match of `until` (then the request is cancelled). */
export async function readLive(base: string, headers: Record<string, string> = {}, until = /event: snapshot\ndata: .*\n\n/): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}/live`, { headers });
  if (res.status !== 200) return { status: res.status, text: await res.text() };
  const reader = res.body!.getReader();
  let text = '';
  try {
    while (!until.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`/live ended before ${until}:\n${text}`);
      text += new TextDecoder().decode(value);
    }
  } finally {
    await reader.cancel();
  }
  return { status: 200, text };
}

/** The data of every event in a /live text, parsed. */
export function liveMessages(text: string): Record<string, any>[] {
  return [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]) as Record<string, any>);
}

/** The IPv4 and IPv6 addresses in `text`, the bind-any 0.0.0.0 and :: aside (they name no one). */
export function addressesIn(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*(?:%\w+)?/g)) {
    const candidate = m[0].replace(/%\w+$/, '');
    for (const c of [candidate, candidate.replace(/[.:]+$/, ''), candidate.replace(/^:+/, '')]) {
      if (isIP(c) !== 0 && c !== '0.0.0.0' && c !== '::') { found.push(c); break; }
    }
  }
  return found;
}
