// Reconnecting after a lost or refused connection: exponential backoff with
// full jitter (a delay drawn uniformly from [0, min(max, first * 2^n))), so
// that a restarted coordinator is not hit by every worker at the same
// moment. The count starts again once a connection was welcomed.

export interface BackoffOptions {
  /** The first delay's ceiling, ms. */
  first: number;
  /** The largest delay, ms. */
  max: number;
}

export class Backoff {
  private attempt = 0;

  constructor(private readonly opts: BackoffOptions, private readonly random: () => number = Math.random) {
    if (!(opts.first > 0 && opts.max >= opts.first)) throw new RangeError(`backoff needs 0 < first <= max, got ${opts.first} and ${opts.max}`);
  }

  /** The delay before the next attempt, ms. */
  next(): number {
    return this.random() * Math.min(this.opts.max, this.opts.first * 2 ** this.attempt++);
  }

  /** A connection was welcomed: the next failure waits little again. */
  reset(): void {
    this.attempt = 0;
  }
}
