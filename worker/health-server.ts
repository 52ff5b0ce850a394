// `dptrain worker --health-listen HOST:PORT`: the worker's liveness and
// readiness over HTTP, for container engines (the image's HEALTHCHECK,
// Kubernetes probes). A worker has no other port: it only dials out.
//
//   GET /healthz  200 whenever the event loop answers. The main thread only
//                 moves messages (the threads compute), so a worker that is
//                 connecting, reconnecting or computing answers at once; one
//                 that does not is hung, which is what a liveness probe is for.
//   GET /readyz   200 while connected to a coordinator and ready for tasks,
//                 503 otherwise, with the state as the body (`connecting`,
//                 `preparing`, `leaving`), so `curl /readyz` says why.
//
// Same server and routes as the coordinator's (node/http/server.ts).
import { getRoute, sendText, startHttpServer, type RunningHttpServer } from '../node/http/server.js';
import type { ListenAddress } from '../node/net/address.js';
import type { WorkerState } from './net-worker.js';

export function startWorkerHealth(listen: ListenAddress, state: () => WorkerState): Promise<RunningHttpServer> {
  return startHttpServer({
    host: listen.host,
    port: listen.port,
    option: '--health-listen',
    handlers: [
      getRoute('/healthz', (_req, res) => sendText(res, 200, 'ok\n')),
      getRoute('/readyz', (_req, res) => {
        const s = state();
        sendText(res, s === 'ready' ? 200 : 503, `${s}\n`);
      }),
    ],
  });
}
