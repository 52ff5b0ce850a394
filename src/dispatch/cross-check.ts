// The cross-check of untrusted answers (--verify-fraction): a range that a
// process or a tab answered is computed again by another worker and the
// bits compared; on a mismatch the coordinator's referee recomputes it, its
// sums are taken, and every worker that differs from them is quarantined
// (disconnected and refused for the rest of the run). Which ranges are
// checked, and how likely a liar is to slip through: verification.ts.
import type { DispatchStats, RangeAnswer, RangeJob } from './contract.js';
import { shardLabel } from './ranges.js';
import { rowsOf } from '../train/range.js';
import { who, type Candidate, type Member, type Round, type Slot } from './round.js';
import { firstDifference } from './verification.js';

/** What the cross-check reads of the dispatcher, and the moves it asks of it. */
export interface CrossCheckHost {
  readonly gradLen: number;
  readonly timing: DispatchStats;
  log(line: string): void;
  /** The step being computed, if any. */
  round(): Round | null;
  /** `step N: ` while a step runs, for log lines. */
  where(): string;
  /** The range's sums are final. */
  accept(round: Round, slot: Slot, answer: RangeAnswer): void;
  /** The round may be complete (a range settled without accept). */
  advance(round: Round): void;
  /** The coordinator's own computation of a range. */
  referee(job: RangeJob): Float32Array;
}

export class CrossCheck {
  /** Said once that the coordinator checks a lone worker itself (until a second worker joins). */
  private soloNoted = false;

  constructor(private readonly host: CrossCheckHost) {}

  /** A second worker is connected: a lone worker's checks go to workers again (and the note may be said again). */
  workersJoined(): void {
    this.soloNoted = false;
  }

  /**
   * Places the second computation of a candidate's range: on an idle worker
   * other than the candidate's, a thread first (trusted: two liars who agree
   * cannot pass it); 'wait' when another worker will be idle soon; the
   * coordinator's referee when no other worker is connected.
   */
  place(
    r: Round, slot: Slot, c: Candidate, idle: Member[], members: Iterable<Member>, dispatch: (m: Member) => void,
  ): 'dispatched' | 'wait' | 'refereed' {
    const pick = idle.find((m) => m !== c.member && m.info.kind === 'thread') ?? idle.find((m) => m !== c.member);
    if (pick === undefined) {
      if ([...members].some((m) => m !== c.member)) return 'wait';
      if (!this.soloNoted) {
        this.soloNoted = true;
        this.host.log(`step ${r.step}: no other worker is connected to check ${who(c.member)}; the coordinator checks its ranges itself until another worker joins`);
      }
      this.refereeCheck(r, slot, c);
      return 'refereed';
    }
    idle.splice(idle.indexOf(pick), 1);
    dispatch(pick);
    return 'dispatched';
  }

  /**
   * Two computations of one checked range by different workers: equal bits
   * confirm the candidate; different bits go to the referee, whose sums are
   * taken, and every worker that differs from them is quarantined.
   */
  compare(round: Round, slot: Slot, first: Candidate, second: Candidate): void {
    const g = this.host.gradLen;
    this.host.timing.verified++;
    const diff = firstDifference(first.answer.sums, second.answer.sums, g);
    if (diff === null) {
      first.member.verified++;
      second.answer.release?.();
      slot.candidate = null;
      this.host.accept(round, slot, first.answer);
      return;
    }
    this.host.timing.disputes++;
    this.host.log(`step ${round.step}: ${who(first.member)} and ${who(second.member)} disagree on micro-shards ${shardLabel(slot)} ` +
      `(first at element ${diff.index} of block ${diff.block}); the coordinator recomputes them`);
    this.settleWithReferee(round, slot, [first, second]);
  }

  /** The candidate checked by the coordinator itself: no other worker is connected. */
  private refereeCheck(round: Round, slot: Slot, c: Candidate): void {
    this.host.timing.verified++;
    this.settleWithReferee(round, slot, [c]);
  }

  /**
   * The referee's sums become the range's; every answer that differs from
   * them gets its worker quarantined. The range is settled before anyone is
   * quarantined: a quarantine makes workers leave, which reschedules.
   */
  private settleWithReferee(round: Round, slot: Slot, answers: Candidate[]): void {
    const truth = this.refereeSums(round, slot);
    const liars: [Member, string][] = [];
    for (const c of answers) {
      const d = firstDifference(c.answer.sums, truth, this.host.gradLen);
      if (d === null) c.member.verified++;
      else liars.push([c.member, `its sums for micro-shards ${shardLabel(slot)} of step ${round.step} differ from the coordinator's recomputation (element ${d.index} of block ${d.block})`]);
      c.answer.release?.();
    }
    if (liars.length > 0 && answers.length === 1) this.host.timing.disputes++;
    slot.candidate = null;
    slot.unchecked = null;
    slot.answer = { taskId: 0, version: round.job.version, blocks: slot.blocks.map((b) => ({ level: b.level, index: b.index })), sums: truth, computeMs: 0 };
    for (const [m, reason] of liars) this.quarantine(m, reason);
    this.host.advance(round);
  }

  /** The range computed by the coordinator's referee. */
  private refereeSums(round: Round, slot: Slot): Float32Array {
    this.host.timing.refereed++;
    const [rowStart, rowEnd] = rowsOf({ rows: round.job.rows, k: round.job.k, start: slot.start, end: slot.end });
    const [jobRowStart] = rowsOf(round.job);
    return this.host.referee({
      ...round.job, start: slot.start, end: slot.end, indices: round.job.indices.subarray(rowStart - jobRowStart, rowEnd - jobRowStart),
    });
  }

  /**
   * A worker that computed wrong bits: disconnected and refused for the rest
   * of the run (the transport decides what identity to refuse). Candidates it
   * left in this step are discarded: nothing of its is taken unchecked.
   */
  private quarantine(m: Member, reason: string): void {
    if (m.quarantined) return;
    m.quarantined = true;
    m.faults++;
    this.host.timing.quarantined++;
    this.host.log(`${this.host.where()}quarantining ${who(m)}: ${reason}; it is disconnected and refused for the rest of the run`);
    const r = this.host.round();
    if (r !== null && !r.settled) {
      for (const slot of r.slots) {
        if (slot.candidate?.member === m) { slot.candidate.answer.release?.(); slot.candidate = null; }
        // Its answers this step that no one checked are recomputed too (earlier steps are applied already).
        if (slot.unchecked === m) { slot.answer?.release?.(); slot.answer = null; slot.unchecked = null; }
      }
    }
    if (m.gone) return;
    if (m.link.quarantine !== undefined) m.link.quarantine(reason);
    else m.link.drop(reason);
  }
}
