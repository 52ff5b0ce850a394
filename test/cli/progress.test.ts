// The live progress bar on a terminal (cli-progress), through a stream that
// says it is a TTY and records what is drawn: after the last epoch no bar is
// redrawn (it would show an epoch that never runs), and each epoch's bar
// starts without the previous epoch's loss.
import { describe, expect, it } from 'vitest';
import { createProgress } from '../../coordinator/cli/progress.js';
import type { Evaluation } from '../../src/train/evaluate.js';

/** A stream cli-progress takes for a terminal; `text` is everything written, escape codes included. */
function fakeTerminal(): { stream: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const stream = { isTTY: true, columns: 200, write(chunk: string) { text += chunk; return true; } };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

/** The bar drawings in `text` (cli-progress redraws a line in place): each `epoch N |...| step a/b | loss x`. */
function barsIn(text: string): string[] {
  return [...text.matchAll(/epoch \d+ \|[^|]*\| step \d+\/\d+ \| loss [^|]+/g)].map((m) => m[0].replace(/\|[^|]*\|/, '||').trim());
}

const test: Evaluation = { loss: 1.5, accuracy: 0.5, f1Macro: 0.4, samples: 10 };

describe('the progress bar on a terminal', () => {
  it('draws no bar after the last epoch, and starts each epoch\'s bar without a loss', () => {
    const term = fakeTerminal();
    const progress = createProgress({ stream: term.stream });
    progress.start(4, 0, 0);
    progress.step({ epoch: 0, step: 1, loss: 2.5, samplesPerSec: 100 });
    progress.step({ epoch: 0, step: 2, loss: 2.25, samplesPerSec: 100 });
    progress.epoch({ epoch: 1, step: 2, trainLoss: 2.375, test });
    progress.step({ epoch: 1, step: 3, loss: 2.0, samplesPerSec: 100 });
    progress.step({ epoch: 1, step: 4, loss: 1.75, samplesPerSec: 100 });
    progress.epoch({ epoch: 2, step: 4, trainLoss: 1.875, test });
    progress.stop();

    const text = term.text();
    const bars = barsIn(text);
    expect(bars.some((b) => b.startsWith('epoch 3'))).toBe(false);
    // The bar drawn right after epoch 1's line is epoch 2's, with no loss yet.
    const afterEpoch1 = text.slice(text.indexOf('epoch 1 (step 2): train loss 2.3750'));
    expect(barsIn(afterEpoch1)[0]).toBe('epoch 2 || step 2/4 | loss -');
    // Nothing is drawn after the last epoch's line.
    const afterLast = text.slice(text.indexOf('epoch 2 (step 4): train loss 1.8750'));
    expect(barsIn(afterLast)).toEqual([]);
  });

  it('a run stopped by maxSteps in the middle of an epoch ends with its epoch line, not a new bar', () => {
    const term = fakeTerminal();
    const progress = createProgress({ stream: term.stream });
    progress.start(3, 0, 2);
    for (let s = 1; s <= 3; s++) progress.step({ epoch: 0, step: s, loss: 2, samplesPerSec: 100 });
    progress.epoch({ epoch: 1, step: 3, trainLoss: 2, test });
    progress.note?.('a note after the end');
    progress.stop();
    const text = term.text();
    expect(text).toContain('a note after the end\n');
    expect(barsIn(text.slice(text.indexOf('epoch 1 (step 3)')))).toEqual([]);
  });
});
