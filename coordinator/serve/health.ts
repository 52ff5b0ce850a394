// Liveness and readiness of the coordinator, for container engines and load
// balancers. /healthz answers 200 whenever the process's event loop does
// (a hung coordinator is what a liveness probe is for). /readyz answers 200
// only while the run can use workers -- waiting for them or training -- and
// 503 before (loading data, resuming) and after (finished, failed), with the
// phase as the body, so `curl /readyz` says why.

import { getRoute, sendText, type Handler } from '../../node/http/server.js';

/** The phases of a coordinator's run, in order. */
export const PHASES = ['starting', 'waiting-for-workers', 'training', 'finishing', 'done', 'failed'] as const;
export type Phase = (typeof PHASES)[number];

/** True in the phases where workers are wanted (readyz answers 200). */
export function isReady(phase: Phase): boolean {
  return phase === 'waiting-for-workers' || phase === 'training';
}

/** The /healthz and /readyz routes; `phase` is asked on every /readyz request. */
export function healthHandlers(phase: () => Phase): Handler[] {
  return [
    getRoute('/healthz', (_req, res) => sendText(res, 200, 'ok\n')),
    getRoute('/readyz', (_req, res) => {
      const p = phase();
      sendText(res, isReady(p) ? 200 : 503, `${p}\n`);
    }),
  ];
}
