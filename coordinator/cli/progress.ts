// Progress while training: a live bar on a terminal (cli-progress: epoch,
// step, loss, samples/s, ETA), plain periodic lines elsewhere (CI logs,
// pipes). Everything goes to stderr so stdout keeps the final summary (and
// the --json line) clean.
import cliProgress from 'cli-progress';
import type { ProgressSink } from '../run/trainer.js';

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Seconds between plain lines. */
  intervalSeconds?: number;
  quiet?: boolean;
}

function fmtEval(test: { loss: number; accuracy?: number; f1Macro?: number }): string {
  const parts = [`test loss ${test.loss.toFixed(4)}`];
  if (test.accuracy !== undefined) parts.push(`accuracy ${(100 * test.accuracy).toFixed(2)}%`);
  if (test.f1Macro !== undefined) parts.push(`macro-F1 ${test.f1Macro.toFixed(4)}`);
  return parts.join(', ');
}

export function createProgress(opts: ProgressOptions = {}): ProgressSink {
  const stream = opts.stream ?? process.stderr;
  if (opts.quiet) return { start() {}, step() {}, epoch() {}, stop() {}, note(line) { stream.write(line + '\n'); } };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar({
      stream,
      format: 'epoch {epoch} |{bar}| step {value}/{total} | loss {loss} | {rate} samples/s | ETA {eta_formatted}',
      hideCursor: true,
      etaBuffer: 50,
    }, cliProgress.Presets.shades_classic);
    let value = 0;
    let payload: Record<string, unknown> = { epoch: 1, loss: '-', rate: '-' };
    // The bar is on screen from start() until the last step's epoch line (or stop()):
    // redrawn after that, it would show an epoch that never runs.
    let drawn = false;
    /** Prints a line above the bar (the bar is redrawn below it while steps remain). */
    const above = (line: string) => {
      if (drawn) bar.stop();
      stream.write(line + '\n');
      drawn = value < bar.getTotal();
      if (drawn) bar.start(bar.getTotal(), value, payload);
    };
    return {
      start(total, first, workers) {
        value = first;
        stream.write(`training: ${total} steps${first > 0 ? `, resuming at step ${first}` : ''}, ${workersLabel(workers)}\n`);
        bar.start(total, first, payload);
        drawn = true;
      },
      step(i) {
        value = i.step;
        payload = { epoch: i.epoch + 1, loss: i.loss.toFixed(4), rate: Math.round(i.samplesPerSec) };
        if (drawn) bar.update(i.step, payload);
      },
      epoch(i) {
        // The next epoch's bar starts without a loss: the last one belonged to the epoch just ended.
        payload = { epoch: i.epoch + 1, loss: '-', rate: payload.rate };
        above(`epoch ${i.epoch} (step ${i.step}): train loss ${i.trainLoss.toFixed(4)}, ${fmtEval(i.test)}`);
      },
      note(line) { above(line); },
      stop() {
        if (drawn) bar.stop();
        drawn = false;
      },
    };
  }
  const interval = (opts.intervalSeconds ?? 5) * 1000;
  let last = 0;
  let total = 0;
  return {
    start(t, first, workers) {
      total = t;
      last = performance.now();
      stream.write(`training: ${t} steps${first > 0 ? `, resuming at step ${first}` : ''}, ${workersLabel(workers)}\n`);
    },
    step(i) {
      const now = performance.now();
      if (now - last < interval) return;
      last = now;
      stream.write(`epoch ${i.epoch + 1} step ${i.step}/${total} loss ${i.loss.toFixed(4)} ${Math.round(i.samplesPerSec)} samples/s\n`);
    },
    epoch(i) { stream.write(`epoch ${i.epoch} (step ${i.step}): train loss ${i.trainLoss.toFixed(4)}, ${fmtEval(i.test)}\n`); },
    checkpoint(i) { stream.write(`checkpoint: step ${i.step} -> ${i.file}\n`); },
    note(line) { stream.write(line + '\n'); },
    stop() {},
  };
}

function workersLabel(workers: number | 'auto' | undefined): string {
  if (workers === undefined) return 'in one thread';
  if (workers === 'auto') return "on worker threads or in the coordinator's thread, whichever measures faster";
  return workers === 0 ? 'in the coordinator thread (--workers 0)' : `on ${workers} worker${workers === 1 ? '' : 's'}`;
}
