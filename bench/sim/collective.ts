// The collective, simulated (NOTES-coll.md, "One step"), with the real
// scheduling code: the cut by measured speed (the dispatcher's
// alignedSplit), the plan (src/collective/schedule.ts: slices, who sends
// which blocks where, their bytes on the wire, bf16 or f32) and every
// owner's SliceReducer (src/collective/slice-reduce.ts, on vectors shortened
// to SHORT_SLICE floats a slice: it checks that each owner gets exactly the
// parts the plan says). Per step:
//   the coordinator's order (with the previous step's commit) to every
//   member -> each applies the committed step, computes its blocks, sends
//   every owner its slice of them (to owners in turn from the next one on,
//   so that not everyone starts at owner 0) and says `computed` -> an owner
//   with every part reduces its slice and sends it to every other member
//   and to the coordinator -> the coordinator, with every slice, hashes the
//   sum and sends the next order at once (then applies the step itself).
import { alignedSplit, CUT_TOLERANCE } from '../../src/dispatch/ranges.js';
import { partsOf, planCollective, vectorBytes, type CollectivePlan, type ContributorRange } from '../../src/collective/schedule.js';
import { SliceReducer } from '../../src/collective/slice-reduce.js';
import type { GradWire } from '../../src/reduce/bf16.js';
import { addsFor, type RunFigures } from './star.js';
import { transfer, work, type Machine, type Workload } from './model.js';

const SPEED_SMOOTHING = 0.3;
/** Floats per slice in the vectors the real reducers handle in the simulation (the byte counts use the model's). */
const SHORT_SLICE = 16;

/** The members' ranges, in member order: alignedSplit's cut by speed; a member whose share rounds to nothing gets an empty range (it still owns a slice). */
export function memberRanges(k: number, speeds: readonly number[]): ContributorRange[] {
  const cut = alignedSplit(0, k, speeds, CUT_TOLERANCE);
  const bySlot = new Map(cut.map((r) => [r.slot, r]));
  const ranges: ContributorRange[] = [];
  let at = 0;
  for (let i = 0; i < speeds.length; i++) {
    const r = bySlot.get(i);
    const end = r === undefined ? at : r.end;
    ranges.push({ start: at, end, owner: true });
    at = end;
  }
  return ranges;
}

export async function simulateCollective(w: Workload, m: Machine, members: number, steps: number, warm: number, wire: GradWire): Promise<RunFigures> {
  const G = w.gradLen;
  const speeds = new Array<number>(members).fill(NaN);
  const T = w.numTrainable;
  let stepsDone = 0;
  let t0 = 0;
  let c0 = { sent: 0, received: 0 };
  let w0: { sent: number; received: number }[] = [];

  /** One step's state. */
  interface Round {
    step: number;
    plan: CollectivePlan;
    short: CollectivePlan;
    reducers: SliceReducer[];
    /** Per member: reduced slices it holds; the coordinator's count. */
    slices: number[];
    atCoordinator: number;
    /** Per member: whether it has the order of the next step (the commit of this one). */
    committed: boolean[];
    orderedAt: number;
  }
  const rounds = new Map<number, Round>();
  /** Per member: the step it computes next once it has that step's order and the previous step applied. */
  const applied = new Array<number>(members).fill(-1);
  const ordered = new Array<number>(members).fill(-1);

  function compose(step: number): Round {
    const known = speeds.filter((x) => !Number.isNaN(x));
    const mean = known.length === 0 ? 1 : known.reduce((a, x) => a + x, 0) / known.length;
    const ranges = memberRanges(w.k, speeds.map((x) => (Number.isNaN(x) ? mean : x)));
    const plan = planCollective(w.k, G, ranges);
    const short = planCollective(w.k, SHORT_SLICE * members, ranges);
    const reducers = short.owners.map((_, j) => new SliceReducer(short, j, SHORT_SLICE * members, 'f32'));
    const r: Round = { step, plan, short, reducers, slices: new Array<number>(members).fill(0), atCoordinator: 0, committed: new Array<boolean>(members).fill(false), orderedAt: m.q.now() };
    rounds.set(step, r);
    return r;
  }

  /** The coordinator sends step `step`'s order to every member (it carries the commit of step - 1). */
  function order(r: Round): void {
    r.plan.contributors.forEach((c, i) => {
      const rows = c.end > c.start ? (w.batch / w.k) * (c.end - c.start) : 0;
      transfer(m, 'coordinator', `w${i}`, 200 + 40 * members + 4 * rows, () => {
        ordered[i] = r.step;
        const prev = rounds.get(r.step - 1);
        if (prev !== undefined) prev.committed[i] = true;
        advance(i);
      });
    });
  }

  /**
   * Member i goes on as far as it can: it applies step s once it holds every
   * slice of s and the commit of s (in the order of s + 1), then computes the
   * step it was ordered, once the step before that is applied.
   */
  function advance(i: number): void {
    const pending = rounds.get(applied[i] + 1);
    if (pending !== undefined && pending.committed[i] && pending.slices[i] === members) {
      applied[i]++;
      work(m, `w${i}`, w.size * w.applyMsPerFloat, () => advance(i));
      return;
    }
    const r = rounds.get(ordered[i]);
    const key = `${i}/${ordered[i]}`;
    if (r === undefined || applied[i] !== r.step - 1 || computing.has(key)) return;
    computing.add(key);
    compute(r, i);
  }
  const computing = new Set<string>();

  function compute(r: Round, i: number): void {
    const c = r.plan.contributors[i];
    const leaves = c.end - c.start;
    const rows = w.batch / w.k;
    const rounding = wire === 'bf16' ? (2 * leaves) * G * w.roundMsPerFloat : 0;
    const ms = leaves * w.leafMs(rows) + addsFor(leaves, c.blocks.length) * G * w.addMsPerFloat + rounding;
    const start = m.q.now();
    work(m, `w${i}`, ms, () => {
      if (leaves > 0) {
        const rate = ((w.batch / w.k) * leaves) / Math.max(1e-6, m.q.now() - start);
        speeds[i] = Number.isNaN(speeds[i]) ? rate : (1 - SPEED_SMOOTHING) * speeds[i] + SPEED_SMOOTHING * rate;
      }
      // Its own slice of its blocks stays here; the others' go out, to owners in turn from the next one on.
      if (c.blocks.length > 0 && c.slice >= 0) deliver(r, c.slice, i);
      const parts = partsOf(r.plan, i);
      const from = parts.findIndex((p) => p.to > i);
      const turn = from < 0 ? parts : [...parts.slice(from), ...parts.slice(0, from)];
      for (const p of turn) {
        transfer(m, `w${i}`, `w${p.to}`, vectorBytes(p.from, p.end, T, wire, p.blocks.length), () => deliver(r, p.slice, i));
      }
      transfer(m, `w${i}`, 'coordinator', 40, () => {});
    });
  }

  /** Owner of `slice` gets contributor c's part. */
  function deliver(r: Round, slice: number, c: number): void {
    const red = r.reducers[slice];
    const len = red.to - red.from;
    const problem = red.add(c, r.short.contributors[c].blocks, new Float32Array(r.short.contributors[c].blocks.length * len));
    if (problem !== null) throw new Error(`simulated step ${r.step}: owner of slice ${slice}: contributor ${c} ${problem}`);
    if (!red.complete()) return;
    red.reduce(new Float32Array(len));
    const o = r.plan.owners[slice];
    const owner = r.plan.contributors[o];
    const nodes = r.plan.contributors.reduce((a, x) => a + x.blocks.length, 0);
    work(m, `w${o}`, addsFor(nodes, 1) * (owner.to - owner.from) * w.addMsPerFloat, () => {
      const bytes = vectorBytes(owner.from, owner.to, T, wire);
      gathered(r, o);
      for (let j = 0; j < members; j++) {
        if (j !== o) transfer(m, `w${o}`, `w${j}`, bytes, () => gathered(r, j));
      }
      transfer(m, `w${o}`, 'coordinator', bytes, () => atCoordinator(r));
    });
  }

  function gathered(r: Round, j: number): void {
    r.slices[j]++;
    if (r.slices[j] === members) advance(j);
  }

  function atCoordinator(r: Round): void {
    if (++r.atCoordinator < members) return;
    // Every slice: hash the sum, order the next step (carrying the commit), then apply it here.
    work(m, 'coordinator', G * 4 * m.wire.byteMs, () => {
      stepsDone++;
      if (stepsDone === warm) {
        t0 = m.q.now();
        c0 = m.net.bytes('coordinator');
        w0 = Array.from({ length: members }, (_, i) => m.net.bytes(`w${i}`));
      }
      if (r.step + 1 < warm + steps) order(compose(r.step + 1));
      else for (let i = 0; i < members; i++) r.committed[i] = true;
      work(m, 'coordinator', w.size * w.applyMsPerFloat, () => {});
      rounds.delete(r.step - 2);
    });
  }

  order(compose(0));
  await m.q.drive(() => stepsDone === warm + steps, 'the collective\'s steps');
  const ms = m.q.now() - t0;
  const c1 = m.net.bytes('coordinator');
  const busiest = Math.max(...w0.map((b, i) => { const a = m.net.bytes(`w${i}`); return a.sent + a.received - b.sent - b.received; }));
  return { msPerStep: ms / steps, coordinatorBytesPerStep: (c1.sent + c1.received - c0.sent - c0.received) / steps, workerBytesPerStep: busiest / steps };
}
