// A hand-made frame (codec.ts's layout) around any msgpack header and
// payload bytes: what a broken or hostile peer could send.
import { pack } from 'msgpackr';

export function rawFrame(header: unknown, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = pack(header);
  const at = (4 + head.length + 3) & ~3;
  const out = new Uint8Array(at + payload.length);
  new DataView(out.buffer).setUint32(0, head.length, true);
  out.set(head, 4);
  out.set(payload, at);
  return out;
}
