// `--chaos` on a member whose range is empty. The coordinator cuts a step's
// micro-shards by the members' measured speed, so a member that was slow can
// be given none; the fault its order carries must still happen (CI once ran a
// whole "dies in the middle of the reduction" test in which it never did).
import { describe, expect, it } from 'vitest';
import { Member, type MemberIo, type ToCoordinator } from '../../src/collective/member.js';
import type { Order } from '../../src/protocol/collective-messages.js';

const GRAD_LEN = 64;

function order(fault: NonNullable<Order['fault']>['kind']): Order {
  return {
    type: 'order', step: 0, attempt: 1, version: 0, k: 8, rows: 16, you: 1, indices: [], wire: 'f32', checkReplica: false,
    // p2 (you: 1) has the empty range [4, 4); it still owns a slice of the sum.
    contributors: [
      { id: 'p1', address: 'p1:1', start: 0, end: 4 },
      { id: 'p2', address: 'p2:1', start: 4, end: 4 },
      { id: 'p3', address: 'p3:1', start: 4, end: 8 },
    ],
    fault: { kind: fault },
  };
}

function member(): { m: Member; events: string[]; toCoordinator: ToCoordinator[] } {
  const events: string[] = [];
  const toCoordinator: ToCoordinator[] = [];
  const io: MemberIo = {
    compute: () => events.push('compute'),
    sendPeer: (peer, msg) => events.push(`${msg.type} to ${peer}`),
    sendCoordinator: (msg) => toCoordinator.push(msg),
    apply: () => events.push('apply'),
    hash: () => '0'.repeat(64),
    replicaHash: () => '0'.repeat(64),
    crash: () => events.push('crash'),
    sendPeerRaw: (peer) => events.push(`raw to ${peer}`),
    log: (line) => events.push(line),
  };
  return { m: new Member('p2', GRAD_LEN, GRAD_LEN, io, -1), events, toCoordinator };
}

describe('a member with an empty range still carries out its fault', () => {
  it('crash: it says it computed nothing, then dies before reducing its slice', () => {
    const { m, events, toCoordinator } = member();
    expect(m.order(order('crash'))).toBeNull();
    expect(events).toEqual(['chaos: step 1: dying in the middle of the reduction', 'crash']);
    expect(toCoordinator.map((x) => x.type)).toEqual(['computed']);
  });

  it('disconnect: the same as crash', () => {
    const { m, events } = member();
    expect(m.order(order('disconnect'))).toBeNull();
    expect(events).toContain('crash');
  });

  it('garble: with no part to replace, a frame that is no message goes to the first peer', () => {
    const { m, events } = member();
    expect(m.order(order('garble'))).toBeNull();
    expect(events).toEqual(['chaos: step 1: sending p1 a garbled part', 'raw to p1']);
  });

  it('no fault: it computes nothing and waits for its slice\'s parts', () => {
    const { m, events, toCoordinator } = member();
    const o = order('crash');
    delete o.fault;
    expect(m.order(o)).toBeNull();
    expect(events).toEqual([]);
    expect(toCoordinator.map((x) => x.type)).toEqual(['computed']);
  });
});
