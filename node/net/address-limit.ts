// At most N connections at once from one network address (WebSocket
// workers and dashboard feeds together): one machine, or one careless page
// reloading in a loop, cannot take every slot. Addresses behind one NAT
// share the limit, so it is a command-line option.

export class AddressLimit {
  private readonly open = new Map<string, number>();

  constructor(readonly max: number) {}

  /** A release function if `address` may open one more connection, else null. Call release once when it closes. */
  acquire(address: string): (() => void) | null {
    const n = this.open.get(address) ?? 0;
    if (n >= this.max) return null;
    this.open.set(address, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(address) ?? 1) - 1;
      if (left <= 0) this.open.delete(address);
      else this.open.set(address, left);
    };
  }

  /** Connections open now from `address`. */
  count(address: string): number {
    return this.open.get(address) ?? 0;
  }
}
