// The dashboard's counted words, kept apart from the DOM so a test reads them.
import type { WorkerSummary } from '../../../src/dispatch/contract.js';

const KIND_PLURAL: Record<WorkerSummary['kind'], string> = { thread: 'threads', process: 'processes', tab: 'tabs' };

/** '2 threads, 1 process, 3 tabs' for the live workers; 'none connected' when there are none. */
export function workerKindsText(live: readonly Pick<WorkerSummary, 'kind'>[]): string {
  const kinds = (['thread', 'process', 'tab'] as const)
    .map((k) => [k, live.filter((w) => w.kind === k).length] as const)
    .filter(([, n]) => n > 0);
  return kinds.length === 0 ? 'none connected' : kinds.map(([k, n]) => `${n} ${n === 1 ? k : KIND_PLURAL[k]}`).join(', ');
}
