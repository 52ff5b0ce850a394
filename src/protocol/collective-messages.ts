// The collective's messages (NOTES-coll.md; issue 21): between the
// coordinator and its members (workers in the collective), and between
// members over their peer links. One zod schema each, types inferred; they
// travel in the frames of codec.ts and go through its one decode().
//
//   coordinator                     member i                          member j (owner of slice j)
//   replica {version} + state ───▶                                    (on joining, on a resync)
//   order {step, attempt, contributors, indices, lr, commit?} ─▶
//                                   computes its blocks
//                                   part {slice j, blocks} + slices ─────▶ (peer link)
//               ◀── computed {step, attempt}
//                                                                     combines slice j in the tree order
//               ◀──────────────────────────────────────────────────── reduced {slice j} + R_j
//                                   ◀──────────────────────────────── reduced {slice j} + R_j
//   commit (in the next order) ─▶   applies the step to its replica
//               ◀── need {slices}   (a slice missing or hashing wrong)    replica-hash {step, hash} (every N steps) ──▶
//               ◀── peer-fault {peer, reason}   (a peer that sent a bad frame, or whose link broke)
//
//   peer link: peer-hello {token, runId, memberId} ─▶ ◀─ peer-welcome {memberId} | refuse
//
// `part`, `reduced` and `commit` carry their floats as a packed payload
// (packed.ts): bf16 heads with `--grad-wire bf16`.
import * as z from 'zod';
import { FaultOrder, floats, MAX_BATCH_ROWS, MAX_MICRO_SHARDS, positive, sha256, text, TreeNodeRef, whole } from './fields.js';

/** Most contributors (members and the coordinator) in one step. */
export const MAX_CONTRIBUTORS = 1024;
/** Attempts of one step before the step is given up (a redo per lost member). */
export const MAX_ATTEMPTS = 1000;

/** A packed payload's shape: `vectors` vectors of `length` floats, the first `half` of each in bf16. */
export const Pack = z.strictObject({
  vectors: positive.max(64),
  length: positive.max(2 ** 28),
  half: whole,
}).refine((p) => p.half <= p.length, { error: 'half must not exceed length', path: ['half'] });

const stepRef = {
  /** 0-based step. */
  step: whole,
  /** Which try of the step (1 unless it was redone: frames of an earlier attempt are stale). */
  attempt: positive.max(MAX_ATTEMPTS),
};

/** One contributor of a step, in micro-shard order: a member, or the coordinator (id `coordinator`, no address, owns no slice). */
export const ContributorRef = z.strictObject({
  id: text(64).min(1),
  /** host:port of its peer port ('' for the coordinator). */
  address: text(300),
  /** Its micro-shards [start, end) (empty for a member with none: it still owns a slice). */
  start: whole.max(MAX_MICRO_SHARDS),
  end: whole.max(MAX_MICRO_SHARDS),
});

export const COORDINATOR_ID = 'coordinator';

/** The commit of a step: its reduced sum's SHA-256; with `sum` empty unless the step ran on the star (nobody else holds it). */
export const Commit = z.strictObject({
  type: z.literal('commit'),
  ...stepRef,
  hash: sha256,
  /** The learning rate of the committed step (the coordinator's schedule). */
  lr: z.number().positive().max(1e6),
  pack: Pack.optional(),
  /** The reduced sum itself (payload), when the members do not hold it. */
  sum: floats,
});

export const Order = z.strictObject({
  type: z.literal('order'),
  ...stepRef,
  /** The weights version the step starts from (the replica must hold it). */
  version: whole,
  k: positive.max(MAX_MICRO_SHARDS),
  rows: positive.max(MAX_BATCH_ROWS),
  /** Every contributor, in micro-shard order: their ranges tile [0, k). */
  contributors: z.array(ContributorRef).min(1).max(MAX_CONTRIBUTORS),
  /** The receiver's index among them. */
  you: whole.max(MAX_CONTRIBUTORS - 1),
  /** Sample indices of the receiver's rows only. */
  indices: z.array(whole).max(MAX_BATCH_ROWS),
  wire: z.enum(['f32', 'bf16']),
  /** The previous step's commit, when this order carries it. */
  commit: z.strictObject({ ...stepRef, hash: sha256, lr: z.number().positive().max(1e6) }).optional(),
  /** Send replica-hash after applying this step's commit. */
  checkReplica: z.boolean(),
  fault: FaultOrder.optional(),
}).superRefine((o, ctx) => {
  if (o.you >= o.contributors.length) ctx.addIssue({ code: 'custom', path: ['you'], message: `index ${o.you} of ${o.contributors.length} contributors` });
  let at = 0;
  o.contributors.forEach((c, i) => {
    if (c.start !== at || c.end < c.start || c.end > o.k) {
      ctx.addIssue({ code: 'custom', path: ['contributors', i], message: `micro-shards [${c.start}, ${c.end}) do not follow [0, ${at}) inside [0, ${o.k})` });
    }
    at = c.end;
  });
  if (at !== o.k) ctx.addIssue({ code: 'custom', path: ['contributors'], message: `the ranges cover [0, ${at}), not [0, ${o.k})` });
});

/** A contributor's slices of its blocks for one owner (reduce-scatter). */
export const Part = z.strictObject({
  type: z.literal('part'),
  ...stepRef,
  /** The owner's slice index. */
  slice: whole.max(MAX_CONTRIBUTORS - 1),
  /** The sender's range's aligned blocks, left to right. */
  blocks: z.array(TreeNodeRef).min(1).max(64),
  pack: Pack,
  sums: floats,
}).refine((p) => p.pack.vectors === p.blocks.length, { error: 'pack.vectors must equal the number of blocks', path: ['pack'] });

/** An owner's reduced slice (all-gather; to the coordinator; and from the coordinator in answer to need). */
export const Reduced = z.strictObject({
  type: z.literal('reduced'),
  ...stepRef,
  slice: whole.max(MAX_CONTRIBUTORS - 1),
  pack: Pack,
  sums: floats,
}).refine((p) => p.pack.vectors === 1, { error: 'a reduced slice is one vector', path: ['pack'] });

export const Computed = z.strictObject({
  type: z.literal('computed'),
  ...stepRef,
  computeMs: z.number().nonnegative().max(1e9),
  /** SHA-256 of the weights it computed with: the coordinator checks them against its own before it commits the step. */
  weights: sha256.optional(),
});

export const PeerFault = z.strictObject({
  type: z.literal('peer-fault'),
  ...stepRef,
  /** The peer's member id. */
  peer: text(64).min(1),
  reason: text(1024),
});

export const Need = z.strictObject({
  type: z.literal('need'),
  ...stepRef,
  slices: z.array(whole.max(MAX_CONTRIBUTORS - 1)).min(1).max(MAX_CONTRIBUTORS),
});

export const ReplicaHash = z.strictObject({
  type: z.literal('replica-hash'),
  step: whole,
  /** SHA-256 of the replica's weights, then its optimizer state, after applying `step`. */
  hash: sha256,
});

/** The weights and optimizer state a member starts from (join, resync): params, then the optimizer's state buffers in its order. */
export const Replica = z.strictObject({
  type: z.literal('replica'),
  version: whole,
  /** 0-based step these weights start. */
  step: whole,
  /** The optimizer's config (its kind and constants; the learning rate of each step comes with its commit), checked by the member. */
  optimizer: z.unknown(),
  /** Updates the optimizer has applied (Adam's bias correction counts them). */
  updates: whole,
  /** The weights, then the optimizer's state buffers in its order (payload). */
  state: floats,
});

export const PeerHello = z.strictObject({
  type: z.literal('peer-hello'),
  protocol: whole,
  /** The run's token ('' for none): compared in constant time, never logged. */
  token: text(1024),
  /** The coordinator's run id (welcome.runId): peers of another run are refused. */
  runId: text(64).min(1),
  memberId: text(64).min(1),
});

export const PeerWelcome = z.strictObject({
  type: z.literal('peer-welcome'),
  memberId: text(64).min(1),
});

export type Pack = z.infer<typeof Pack>;
export type ContributorRef = z.infer<typeof ContributorRef>;
export type Commit = z.infer<typeof Commit>;
export type Order = z.infer<typeof Order>;
export type Part = z.infer<typeof Part>;
export type Reduced = z.infer<typeof Reduced>;
export type Computed = z.infer<typeof Computed>;
export type PeerFault = z.infer<typeof PeerFault>;
export type Need = z.infer<typeof Need>;
export type ReplicaHash = z.infer<typeof ReplicaHash>;
export type Replica = z.infer<typeof Replica>;
export type PeerHello = z.infer<typeof PeerHello>;
export type PeerWelcome = z.infer<typeof PeerWelcome>;

/** The collective's schemas, for messages.ts's union. */
export const COLLECTIVE_SCHEMAS = [Order, Commit, Part, Reduced, Computed, PeerFault, Need, ReplicaHash, Replica, PeerHello, PeerWelcome] as const;
