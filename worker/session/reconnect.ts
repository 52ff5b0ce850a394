// What a worker does after a connection ended without a verdict (lost, or
// refused for now): wait and try again, saying so in one line per attempt,
// or give up. The same for a `dptrain worker` process and a volunteer tab.
//
// A worker that has never been welcomed by a coordinator gives up after
// giveUpAfterMs (a wrong host or port, a coordinator that never came): it
// would otherwise retry forever, printing a line every few seconds. Once it
// has been welcomed it never gives up: the coordinator it lost may be
// restarting (`--resume`) and its workers are expected back. The waits grow
// from Backoff's first to its max; the last wait before the deadline is cut
// short so the last attempt falls on it.
import { Backoff, type BackoffOptions } from './backoff.js';

export interface ReconnectOptions {
  /** The coordinator's URL, for the lines. */
  url: string;
  backoff: BackoffOptions;
  /** Give up after this long without ever having been welcomed (0: never). */
  giveUpAfterMs: number;
  /** The end of the give-up message: what to do now (`or wait longer (--give-up-after SECONDS)`). */
  giveUpHint: string;
  /** ms on a monotonic clock (performance.now; a fake one in tests). */
  now: () => number;
  random?: () => number;
}

/** How long a worker that was never welcomed keeps trying, by default (`--give-up-after`: 300 s). */
export const GIVE_UP_AFTER_MS = 300_000;

export type Reconnect =
  | { kind: 'retry'; delayMs: number; line: string }
  /** Never welcomed, and the time is up: the message of the error to end with. */
  | { kind: 'give-up'; message: string };

const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

export class Reconnector {
  private readonly backoff: Backoff;
  private readonly started: number;
  private attempts = 0;
  private everWelcomed = false;

  constructor(private readonly opts: ReconnectOptions) {
    this.backoff = new Backoff(opts.backoff, opts.random);
    this.started = opts.now();
  }

  /** After a connection ended: `welcomed` if the coordinator welcomed it, `cause` what ended it (an error's message). */
  next(welcomed: boolean, cause: string): Reconnect {
    this.attempts++;
    if (welcomed) {
      this.everWelcomed = true;
      this.backoff.reset();
    }
    const delay = this.backoff.next();
    if (this.everWelcomed) {
      return { kind: 'retry', delayMs: delay, line: `connection to ${this.opts.url} lost (${cause}); reconnecting in ${Math.round(delay)} ms` };
    }
    const { giveUpAfterMs } = this.opts;
    const elapsed = this.opts.now() - this.started;
    if (giveUpAfterMs > 0 && elapsed >= giveUpAfterMs) {
      return {
        kind: 'give-up',
        message: `no coordinator reached at ${this.opts.url} in ${seconds(elapsed)} (${this.attempts} attempt${this.attempts === 1 ? '' : 's'}; the last: ${cause}); ` +
          `check the address and that the coordinator runs, ${this.opts.giveUpHint}`,
      };
    }
    const wait = giveUpAfterMs > 0 ? Math.min(delay, giveUpAfterMs - elapsed) : delay;
    const left = giveUpAfterMs > 0 ? `; giving up in ${seconds(giveUpAfterMs - elapsed)}` : '';
    return { kind: 'retry', delayMs: wait, line: `cannot reach ${this.opts.url} (${cause}); reconnecting in ${Math.round(wait)} ms (attempt ${this.attempts}${left})` };
  }
}
