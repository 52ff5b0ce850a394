// Reconnecting after a lost or refused connection: exponential backoff with
// "equal jitter": the n-th delay is drawn uniformly from [cap/2, cap], cap =
// min(max, first * 2^n). The delays grow to the ceiling (a coordinator that
// is down for long is not hammered, and a user watching sees the waits
// lengthen), and the half drawn at random keeps workers that lost a
// restarted coordinator together from all coming back at the same moment.
// The count starts again once a connection was welcomed.

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
    const cap = Math.min(this.opts.max, this.opts.first * 2 ** this.attempt++);
    return cap / 2 + (this.random() * cap) / 2;
  }

  /** A connection was welcomed: the next failure waits little again. */
  reset(): void {
    this.attempt = 0;
  }
}
