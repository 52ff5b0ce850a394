// How the WebSocket transport hands the collective its members: the port
// the collective engine (coordinator/engines/collective.ts) implements and
// the transport (coordinator/transports/ws/) calls. A worker that said
// hello with a peer address is a candidate; once ready, it is a member
// (and a worker of the dispatcher too: the star runs the steps the
// collective cannot); its collective messages come here.
import type { Computed, Need, PeerFault, ReplicaHash, Reduced } from '../protocol/collective-messages.js';
import type { ConductorMessage, Hello } from '../protocol/messages.js';

export type FromMember = Computed | Reduced | PeerFault | Need | ReplicaHash;

export interface CollectivePort {
  /** Whether a worker that said this hello becomes a member when ready (it advertised a peer address, the topology allows it). */
  accepts(hello: Hello): boolean;
  /** A member is ready; `send` reaches it, `drop` disconnects it (the transport then calls left). */
  joined(id: string, address: string, send: (m: ConductorMessage) => void, drop: (reason: string) => void): void;
  message(id: string, m: FromMember): void;
  left(id: string, reason: string): void;
}
