// What a volunteer's browser downloads to compute: the /join page and every
// file it leads to (its script and style, the tab worker, the compute
// worker, the chunk they share, the kernels), found by following the
// references in each file as the coordinator serves it, over real HTTP on
// port 0. Measured as sent with and without `Accept-Encoding: gzip`, and
// held to a budget:
//
//   BUDGET_BYTES  what is sent to a browser (gzip; every browser accepts it)
//   BUDGET_RAW    the same files uncompressed
//
// Before (two self-contained classic workers, each with all of zod and its
// 64 locales, served uncompressed): 1,055 KB, all of it sent. 2026-12-07,
// with convolutions and the collective's protocol: 261.5 KiB raw, 86.5 KiB
// sent (the test prints the figures per file). A named `import { z }` from
// zod anywhere the tab reaches would add 100 KiB sent (eslint refuses it).
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { acceptsGzip, pageHandlers } from '../../coordinator/serve/pages.js';
import { startHttpServer } from '../../node/http/server.js';
import type { IncomingMessage } from 'node:http';

const BUDGET_BYTES = 100 * 1024;
const BUDGET_RAW = 300 * 1024;

interface Fetched {
  status: number;
  encoding: string | undefined;
  body: Buffer;
}

function get(url: string, acceptEncoding: string | null): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: acceptEncoding === null ? {} : { 'accept-encoding': acceptEncoding } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The same-origin paths a file refers to: /static/... anywhere, and ./x.js imports of a module under /static/. */
function references(path: string, text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(/\/static\/[\w.-]+/g)) found.add(m[0]);
  if (path.startsWith('/static/') && path.endsWith('.js')) {
    for (const m of text.matchAll(/(?:from|import)\s*\(?\s*["']\.\/([\w.-]+\.js)["']/g)) found.add(`/static/${m[1]}`);
  }
  return [...found];
}

describe('what a volunteer downloads', () => {
  it(`the join page and everything it loads: at most ${BUDGET_BYTES / 1024} KiB sent (gzip), ${BUDGET_RAW / 1024} KiB raw`, async () => {
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, handlers: pageHandlers({ title: 't', kernels: 'wasm', log: () => {} }) });
    try {
      const sizes = new Map<string, { raw: number; sent: number }>();
      const queue = ['/join'];
      while (queue.length > 0) {
        const path = queue.shift()!;
        if (sizes.has(path)) continue;
        const raw = await get(`${server.url}${path}`, null);
        const sent = await get(`${server.url}${path}`, 'gzip, deflate, br');
        expect(raw.status, path).toBe(200);
        expect(raw.encoding, path).toBeUndefined();
        sizes.set(path, { raw: raw.body.length, sent: sent.body.length });
        if (!path.endsWith('.wasm')) queue.push(...references(path, raw.body.toString('utf8')));
      }
      const total = { raw: 0, sent: 0 };
      for (const s of sizes.values()) { total.raw += s.raw; total.sent += s.sent; }
      console.log(`a volunteer downloads ${[...sizes].map(([p, s]) => `${p} ${s.sent}/${s.raw}`).join(', ')}: ${(total.sent / 1024).toFixed(1)} KiB sent (gzip), ${(total.raw / 1024).toFixed(1)} KiB raw`);
      expect([...sizes.keys()].sort()).toEqual(expect.arrayContaining([
        '/join', '/static/join.js', '/static/join.css', '/static/tab-worker.js', '/static/compute-worker.js', '/static/shared.js', '/static/kernels.wasm',
      ]));
      expect(total.sent).toBeLessThanOrEqual(BUDGET_BYTES);
      expect(total.raw).toBeLessThanOrEqual(BUDGET_RAW);
    } finally {
      await server.close();
    }
  });

  it('zod is in one file only (the chunk both workers share)', async () => {
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, handlers: pageHandlers({ title: 't', kernels: 'wasm', log: () => {} }) });
    try {
      // A string of zod's core that survives minification.
      const holders: string[] = [];
      for (const name of ['join.js', 'tab-worker.js', 'compute-worker.js', 'shared.js']) {
        const { body } = await get(`${server.url}/static/${name}`, null);
        if (body.toString('utf8').includes('unrecognized_keys')) holders.push(name);
      }
      expect(holders).toEqual(['shared.js']);
    } finally {
      await server.close();
    }
  });

  it('gzip only when the request accepts it', () => {
    const req = (value: string | undefined) => ({ headers: value === undefined ? {} : { 'accept-encoding': value } }) as IncomingMessage;
    expect(acceptsGzip(req('gzip, deflate, br'))).toBe(true);
    expect(acceptsGzip(req('br;q=1.0, gzip;q=0.8'))).toBe(true);
    expect(acceptsGzip(req('*'))).toBe(true);
    expect(acceptsGzip(req('gzip;q=0'))).toBe(false);
    expect(acceptsGzip(req('identity'))).toBe(false);
    expect(acceptsGzip(req(undefined))).toBe(false);
  });
});
