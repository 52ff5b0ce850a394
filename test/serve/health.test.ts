import { afterEach, describe, expect, it } from 'vitest';
import { healthHandlers, PHASES, type Phase } from '../../coordinator/serve/health.js';
import { startHttpServer, type RunningHttpServer } from '../../node/http/server.js';

let running: RunningHttpServer | undefined;
afterEach(async () => { await running?.close(); });

describe('/healthz and /readyz', () => {
  it('healthz is 200 in every phase; readyz is 200 only waiting for workers or training, with the phase as the body', async () => {
    let phase: Phase = 'starting';
    running = await startHttpServer({ host: '127.0.0.1', port: 0, handlers: healthHandlers(() => phase) });
    const seen: string[] = [];
    for (const p of PHASES) {
      phase = p;
      const h = await fetch(`${running.url}/healthz`);
      expect([h.status, await h.text()]).toEqual([200, 'ok\n']);
      const r = await fetch(`${running.url}/readyz`);
      expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
      seen.push(`${p}: ${r.status} ${(await r.text()).trim()}`);
    }
    expect(seen).toEqual([
      'starting: 503 starting',
      'waiting-for-workers: 200 waiting-for-workers',
      'training: 200 training',
      'finishing: 503 finishing',
      'done: 503 done',
      'failed: 503 failed',
    ]);
    expect((await fetch(`${running.url}/readyz`, { method: 'DELETE' })).status).toBe(405);
  });
});
