// The collective engine (issue 21; NOTES-coll.md): the steps of a run with
// `dptrain worker --peer-listen` processes reduce among those workers, the
// coordinator receiving the reduced sum once per step; any step the
// collective cannot run (fewer than 2 members in sync, none at all, tabs or
// threads only) runs on the star, through the dispatcher engine it wraps.
// Per step:
//   1. members that joined since the last step get the replica (the master
//      weights and the optimizer state: what they start this step from);
//   2. the Conductor runs the step among the members (src/collective/
//      conductor.ts: orders, redo without a lost member) and resolves with
//      the reduced sum; or it falls back, and the dispatcher computes the
//      sum and the commit carries it to the members;
//   3. the trainer's own apply (stepper.apply) writes the master weights:
//      the commit point; every N steps the replicas' hashes are compared.
// The engine is the CollectivePort the WebSocket transport hands members to.
import { createHash } from 'node:crypto';
import { Conductor, CollectiveFallback } from '../../src/collective/conductor.js';
import type { CollectivePort, FromMember } from '../../src/collective/port.js';
import type { Dispatcher } from '../../src/dispatch/dispatcher.js';
import { systemClock } from '../../src/dispatch/clock.js';
import type { Fault } from '../../src/dispatch/chaos.js';
import type { WeightsBoard } from '../../src/dispatch/weights-board.js';
import type { Model } from '../../src/model/model.js';
import type { ConductorMessage } from '../../src/protocol/messages.js';
import type { GradWire } from '../../src/reduce/bf16.js';
import { shardCount } from '../../src/train/batch.js';
import { gradLength } from '../../src/train/step.js';
import type { Stepper } from '../run/stepper.js';
import { stateArrays } from '../../src/optim/optimizer.js';
import type { EngineOutcome, GradientEngine, TopologyReport } from './engine.js';

export type Topology = 'auto' | 'star' | 'collective';

export interface CollectiveEngineOptions {
  /** The star: the dispatcher engine over every worker (members included); made once the coordinator's node is up. */
  star: () => GradientEngine;
  dispatcher: Dispatcher;
  board: WeightsBoard;
  model: Model;
  wire: GradWire;
  topology: Topology;
  /** Why the topology is star, when it is. */
  starReason: string;
  stepTimeoutMs: number;
  /** Compare the members' replica hashes with the coordinator's every this many steps (0: never). */
  checkEvery: number;
  /** `--chaos` faults, for the members by their slot in a step. */
  chaos: readonly Fault[];
  log(line: string): void;
}

export interface CollectiveEngine extends GradientEngine {
  readonly port: CollectivePort;
}

function bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function sha256(...arrays: Float32Array[]): string {
  const h = createHash('sha256');
  for (const a of arrays) h.update(bytes(a));
  return h.digest('hex');
}

export function createCollectiveEngine(o: CollectiveEngineOptions): CollectiveEngine {
  const { dispatcher, board, model, log } = o;
  const star = { get e() { return o.star(); } };
  const links = new Map<string, { address: string; send: (m: ConductorMessage) => void; drop: (reason: string) => void }>();
  /** Members waiting for their replica (joined, or to be resynced): they take part from the next step. */
  const pending = new Set<string>();
  const counts = { collective: 0, star: 0, fallbacks: 0 };
  /** The step after the last one run (null before the first): a step out of turn resyncs every member. */
  let expected: number | null = null;
  let lastFallback = '';
  const conductor = new Conductor({
    gradLen: gradLength(model), numTrainable: model.numTrainable, wire: o.wire, clock: systemClock,
    stepTimeoutMs: o.stepTimeoutMs, checkEvery: o.checkEvery, chaos: o.chaos,
    io: {
      send: (id, m) => links.get(id)?.send(m),
      drop: (id, reason) => { log(`collective: dropping ${id}: ${reason}`); links.get(id)?.drop(reason); },
      hash: (floats) => sha256(floats),
      resync: (id, reason) => {
        if (!links.has(id)) return;
        log(`collective: resyncing ${id}: ${reason}`);
        pending.add(id);
      },
      log: (line) => log(`collective: ${line}`),
    },
  });

  const port: CollectivePort = {
    accepts: (hello) => o.topology !== 'star' && hello.peer !== undefined,
    joined(id, address, send, drop) {
      links.set(id, { address, send, drop });
      pending.add(id);
      log(`collective: ${id} (peers reach it at ${address}) joins from the next step`);
    },
    message(id, m: FromMember) {
      switch (m.type) {
        case 'computed': conductor.computed(id, m); return;
        case 'reduced': conductor.reduced(id, m); return;
        case 'peer-fault': conductor.peerFault(id, m); return;
        case 'need': conductor.need(id, m); return;
        case 'replica-hash': conductor.replicaHash(id, m); return;
      }
    },
    left(id, reason) {
      links.delete(id);
      pending.delete(id);
      conductor.leave(id, reason);
    },
  };

  /** Sends the replica of the master state to the members waiting for it: they start step `step`. */
  function admit(stepper: Stepper, step: number): void {
    if (pending.size === 0) return;
    // The weights, then the optimizer's state arrays in their fixed order (stateArrays): what a checkpoint keeps.
    const arrays = stateArrays(stepper.optimizer, stepper.optimizerState).map((a) => a.array);
    const state = new Float32Array(model.size + arrays.reduce((n, a) => n + a.length, 0));
    state.set(stepper.model.params);
    let at = model.size;
    for (const a of arrays) { state.set(a, at); at += a.length; }
    for (const id of pending) {
      const l = links.get(id);
      if (l === undefined) continue;
      l.send({ type: 'replica', version: board.version, step, optimizer: stepper.optimizer, updates: stepper.optimizerState.step, state });
      conductor.in(id, l.address, step);
    }
    pending.clear();
  }

  return {
    port,
    get workers() { return star.e.workers; },
    batchGradient: (job, out) => star.e.batchGradient(job, out),
    async step(job, stepper) {
      if (expected !== null && job.step !== expected) {
        // Out of turn (a benchmark going round its steps again): the replicas start again from the master state.
        for (const id of links.keys()) pending.add(id);
      }
      expected = job.step + 1;
      admit(stepper, job.step);
      const lr = stepper.lr(job.step);
      const rows = job.indices.length;
      let sum: Float32Array | null = null;
      if (o.topology !== 'star' && conductor.count() >= 2) {
        try {
          sum = await conductor.step({ step: job.step, k: shardCount(rows, job.microShards), rows, indices: job.indices, lr, weights: sha256(stepper.model.params) });
          counts.collective++;
        } catch (err) {
          if (!(err instanceof CollectiveFallback)) throw err;
          if (err.message !== lastFallback) log(`collective: ${err.message}; the step runs on the star`);
          lastFallback = err.message;
          counts.fallbacks++;
        }
      }
      if (sum === null) {
        sum = new Float32Array(gradLength(model));
        await star.e.batchGradient(job, sum);
        counts.star++;
        if (conductor.count() > 0) conductor.commitStar(job.step, lr, sum);
      } else {
        // The star's workers hold the weights by version: the collective's steps make new ones too.
        board.version++;
      }
      const outcome = stepper.apply(job.step, sum);
      if (conductor.isChecked(job.step)) {
        conductor.appliedHash(job.step, sha256(stepper.model.params, ...stateArrays(stepper.optimizer, stepper.optimizerState).map((a) => a.array)));
      }
      return outcome;
    },
    stats: () => ({ ...(star.e.stats?.() ?? dispatcher.stats()), collective: conductor.stats() }),
    summaries: () => dispatcher.summaries(),
    wireBytes: () => star.e.wireBytes?.() ?? { sent: 0, received: 0 },
    stepDone: (report) => star.e.stepDone?.(report),
    topology(): TopologyReport {
      const ran = counts.collective === 0 ? 'star' : counts.star === 0 ? 'collective' : 'mixed';
      const reason = o.topology === 'star' ? o.starReason
        : counts.collective === 0 ? `no step had 2 members in sync (workers join the collective with dptrain worker --peer-listen)${lastFallback === '' ? '' : `; last: ${lastFallback}`}`
          : `${counts.collective} steps reduced among the members, ${counts.star} on the star${lastFallback === '' ? '' : ` (last: ${lastFallback})`}`;
      return { ran, collectiveSteps: counts.collective, starSteps: counts.star, wire: o.wire, reason };
    },
    async close(outcome?: EngineOutcome) {
      conductor.finish();
      await star.e.close(outcome);
    },
  };
}
