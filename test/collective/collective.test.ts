// The collective end to end over in-memory links (test/helpers/collective-lan.ts):
// the real Conductor and Members, the real range compute and applyStep, every
// frame through the codec, arrival order shuffled. Every replica (the
// coordinator's and each member's) must hold, after every step, the bits of
// a single-thread run, whoever computed what, with members lost mid-step, a
// slice garbled on the way, and steps that fall back to the star.
import { describe, expect, it } from 'vitest';
import type { StepJob } from '../../src/collective/conductor.js';
import type { GradWire } from '../../src/reduce/bf16.js';
import { applyStep, gradLength } from '../../src/train/step.js';
import { decode, encode } from '../../src/protocol/codec.js';
import type { Message } from '../../src/protocol/messages.js';
import { BATCH, batchIndices, K } from '../helpers/synthetic.js';
import { batchSum, Lan, replica, replicaSha, SGD } from '../helpers/collective-lan.js';

const STEPS = 6;
const job = (step: number): StepJob => ({ step, k: K, rows: BATCH, indices: batchIndices(step), lr: 0.1 + step / 100 });

/** Replica hashes of a single-thread run after each step. */
function reference(wire: GradWire): string[] {
  const r = replica();
  const out: string[] = [];
  for (let s = 0; s < STEPS; s++) {
    const sum = batchSum(r.model.params, wire, job(s));
    applyStep(r.model, r.plan, sum, SGD, r.state, job(s).lr);
    out.push(replicaSha(r));
  }
  return out;
}

const REF: Record<GradWire, string[]> = { f32: reference('f32'), bf16: reference('bf16') };

function expectInStep(lan: Lan, wire: GradWire, step: number): void {
  expect(replicaSha(lan.coordinator), `coordinator after step ${step + 1}`).toBe(REF[wire][step]);
}

/** Runs steps [from, to), `before(s)` ahead of each, checking the coordinator's bits after each; returns how each ran. */
async function runSteps(lan: Lan, wire: GradWire, from: number, to: number, before?: (s: number) => void): Promise<('collective' | 'star')[]> {
  const how: ('collective' | 'star')[] = [];
  for (let s = from; s < to; s++) {
    before?.(s);
    how.push(await lan.step(job(s)));
    expectInStep(lan, wire, s);
  }
  return how;
}

const collectiveSteps = (n: number): 'collective'[] => new Array<'collective'>(n).fill('collective');

describe('the collective over in-memory links', () => {
  it('bf16 rounds every node: its bits differ from f32\'s, and the single-thread run is the reference for both', () => {
    expect(REF.bf16[STEPS - 1]).not.toBe(REF.f32[STEPS - 1]);
  });

  for (const wire of ['f32', 'bf16'] as const) {
    for (const members of [2, 3, 4]) {
      it(`${wire}, ${members} members: every replica holds the single-thread bits after every step`, async () => {
        for (const seed of [1, 2]) {
          const ids = Array.from({ length: members }, (_, i) => `p${i + 1}`);
          const lan = new Lan(wire, ids, seed);
          expect(await runSteps(lan, wire, 0, STEPS)).toEqual(collectiveSteps(STEPS));
          lan.conductor.finish();
          lan.drain();
          for (const n of lan.nodes.values()) expect(replicaSha(n.replica), `${n.id}, seed ${seed}`).toBe(REF[wire][STEPS - 1]);
          expect(lan.dropped).toEqual([]);
          expect(lan.resynced).toEqual([]);
        }
      });
    }
  }

  it('a member lost mid-step: the step is redone by the others (its late frames are stale); a joiner takes part from the next step', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 3);
    for (let s = 0; s < STEPS; s++) {
      if (s === 2) {
        // p2 dies after some of step 3's frames are out.
        const run = lan.step(job(s));
        for (let i = 0; i < 6; i++) lan.deliverOne();
        lan.kill('p2');
        expect(await run).toBe('collective');
        expect(lan.log.join('\n')).toMatch(/step 3: attempt 1 lost p2 \(p2 killed\); attempt 2 with the others/);
      } else {
        if (s === 4) lan.add('p4', 4);
        expect(await lan.step(job(s))).toBe('collective');
      }
      expectInStep(lan, 'f32', s);
    }
    lan.conductor.finish();
    lan.drain();
    for (const id of ['p1', 'p3', 'p4']) expect(replicaSha(lan.nodes.get(id)!.replica), id).toBe(REF.f32[STEPS - 1]);
  });

  it('a reduced slice garbled on its way to one peer: the commit\'s hash catches it, the member takes the coordinator\'s slices, and the owner is reported and dropped', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 5);
    let garbled = 0;
    lan.tamper = (e, m) => {
      if (garbled === 0 && m.type === 'reduced' && m.step === 1 && e.sender === 'peer' && e.to === 'p3') {
        garbled++;
        const sums = m.sums.slice();
        sums[0] += 1; // finite and well formed: only the hash can tell
        return encode({ ...m, sums });
      }
      return e.frame;
    };
    await runSteps(lan, 'f32', 0, STEPS);
    lan.conductor.finish();
    lan.drain();
    expect(garbled).toBe(1);
    expect(lan.log.join('\n')).toMatch(/p3: step 2: the gathered sum does not hash to the commit's/);
    expect(lan.dropped.join('\n')).toMatch(/reported by p3: its reduced slice \d differs from the coordinator's at element \d+/);
    expect(replicaSha(lan.nodes.get('p3')!.replica)).toBe(REF.f32[STEPS - 1]);
  });

  const badParts: [string, (m: Extract<Message, { type: 'part' }>) => Message, RegExp][] = [
    ['a NaN', (m) => { const sums = m.sums.slice(); sums[1] = NaN; return { ...m, sums }; }, /sent a non-finite value \(element \d+ of block 0\)/],
    ['blocks that are not its range\'s', (m) => ({ ...m, blocks: m.blocks.map((b) => ({ level: b.level, index: b.index + 100 })) }), /sent blocks \d+:1\d\d.*, its range's are/],
    ['a slice the receiver does not own', (m) => ({ ...m, slice: m.slice === 0 ? 1 : 0 }), /sent a part of slice \d, this member owns slice \d/],
    ['a step far ahead', (m) => ({ ...m, step: m.step + 5000 }), /sent a part of step \d+ attempt 1, far ahead/],
  ];
  for (const [what, change, reason] of badParts) {
    it(`a part with ${what} is refused, its sender reported and dropped, and the run keeps the single-thread bits`, async () => {
      const lan = new Lan('f32', ['p1', 'p2', 'p3'], 7);
      let n = 0;
      lan.tamper = (e, m) => {
        if (m.type !== 'part' || m.step !== 1 || n > 0) return e.frame;
        n++;
        return encode(change(m));
      };
      await runSteps(lan, 'f32', 0, 4);
      expect(n).toBe(1);
      expect(lan.log.join('\n')).toMatch(reason);
      expect(lan.dropped.join('\n')).toMatch(new RegExp(`reported by p\\d: ${reason.source}`));
    });
  }

  it('a stale frame (an earlier attempt) is ignored, not an offense', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 11);
    const held: { to: string; frame: Uint8Array }[] = [];
    lan.tamper = (e, m) => {
      // Keep one part of step 2's first attempt back; p3's death makes a second attempt, then the part arrives.
      if (m.type === 'part' && m.step === 1 && m.attempt === 1 && held.length === 0 && e.from !== 'p3' && e.to !== 'p3') { held.push({ to: e.to, frame: e.frame }); return null; }
      return e.frame;
    };
    await lan.step(job(0));
    const run = lan.step(job(1));
    for (let i = 0; i < 4; i++) lan.deliverOne();
    lan.kill('p3');
    await run;
    expect(held).toHaveLength(1);
    const member = lan.nodes.get(held[0].to)!.member;
    const m = decode(held[0].frame, 'peer', { maxFrameBytes: 1 << 26 }) as Extract<Message, { type: 'part' }>;
    expect(member.part('p1', m)).toBeNull();
    expectInStep(lan, 'f32', 1);
    expect(lan.dropped).toEqual([]);
  });

  it('a member that stalls past the step timeout: the stall inspector names it, the step is redone without it, and it is resynced', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 13, 1000);
    expect(await runSteps(lan, 'f32', 0, STEPS, (s) => { if (s === 2) lan.stalled.add('p2'); })).toEqual(collectiveSteps(STEPS));
    expect(lan.log.join('\n')).toMatch(/step 3: stalled: after 1000 ms, p2 had not computed their micro-shards; the step runs again without it/);
    expect(lan.resynced.join('\n')).toMatch(/p2: stalled in step 3/);
  });

  it('a member whose weights drift is taken out of the step before its parts reach a commit (the hash it computed with differs), and resynced', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 17);
    await runSteps(lan, 'f32', 0, STEPS, (s) => { if (s === 4) lan.nodes.get('p3')!.replica.model.params[0] += 1e-3; });
    expect(lan.resynced.join('\n')).toMatch(/p3: it computed step 5 with weights that hash to [0-9a-f]{12}, the step's hash to [0-9a-f]{12}/);
    expect(lan.log.join('\n')).toMatch(/step 5: attempt 1 lost p3 \(p3 computed with other weights\); attempt 2 with the others/);
  });

  it('a member whose optimizer state drifts is caught by the replica check (every 3 steps here) and resynced', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 19);
    await runSteps(lan, 'f32', 0, STEPS, (s) => { if (s === 3) lan.nodes.get('p2')!.replica.state.velocity[0] += 1e-3; });
    lan.drain();
    expect(lan.resynced.join('\n')).toMatch(/p2: its replica after step 3 hashes to [0-9a-f]{12}, the coordinator's to [0-9a-f]{12}/);
  });

  it('a reduced slice lost on a peer link: the member asks the coordinator for it a second after the commit, and applies the step', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 23);
    let lost = 0;
    lan.tamper = (e, m) => {
      if (lost === 0 && m.type === 'reduced' && m.step === 2 && e.sender === 'peer') { lost++; return null; }
      return e.frame;
    };
    await runSteps(lan, 'f32', 0, STEPS);
    lan.conductor.finish();
    lan.drain();
    expect(lost).toBe(1);
    expect(lan.log.join('\n')).toMatch(/p\d: step 3: slices \d had not come 1000 ms after the commit or the last slice; asking the coordinator/);
    for (const n of lan.nodes.values()) expect(replicaSha(n.replica), n.id).toBe(REF.f32[STEPS - 1]);
  });

  it('slices that keep coming after the commit, one a while after the other: the member waits for them (a second from the last) and does not ask the coordinator', async () => {
    const lan = new Lan('f32', ['p1', 'p2', 'p3'], 5);
    // p1's peers' slices of step 2 travel slowly: the commit (the coordinator had the slices first) comes before them.
    lan.hold = (e, m) => m.type === 'reduced' && m.step === 1 && e.sender === 'peer' && e.to === 'p1';
    expect(await runSteps(lan, 'f32', 0, 2)).toEqual(collectiveSteps(2));
    lan.drain();
    expect(lan.holding).toBe(2);
    lan.clock.advance(900);
    lan.release(1);
    lan.drain();
    // 1.8 s after the commit, 0.9 s after the last slice: still waiting, nothing asked.
    lan.clock.advance(900);
    lan.drain();
    expect(lan.log.join('\n')).not.toMatch(/asking the coordinator/);
    lan.release();
    lan.hold = null;
    expect(await runSteps(lan, 'f32', 2, STEPS)).toEqual(collectiveSteps(STEPS - 2));
    lan.conductor.finish();
    lan.drain();
    expect(lan.log.join('\n')).not.toMatch(/asking the coordinator/);
    for (const n of lan.nodes.values()) expect(replicaSha(n.replica), n.id).toBe(REF.f32[STEPS - 1]);
    expect(lan.dropped).toEqual([]);
  });

  it('too few members left: the step falls back to the star, and its commit carries the sum to the survivor', async () => {
    const lan = new Lan('bf16', ['p1', 'p2'], 9);
    const how = await runSteps(lan, 'bf16', 0, STEPS, (s) => { if (s === 3) lan.kill('p2'); });
    expect(how).toEqual(how.map((_, s) => (s >= 3 ? 'star' : 'collective')));
    lan.drain();
    expect(replicaSha(lan.nodes.get('p1')!.replica)).toBe(REF.bf16[STEPS - 1]);
  });

  it('the gradient vector of the synthetic model is what the members exchange', () => {
    expect(gradLength(replica().model)).toBeGreaterThan(100);
  });
});
