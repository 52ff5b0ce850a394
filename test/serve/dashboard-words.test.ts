import { describe, expect, it } from 'vitest';
import { workerKindsText } from '../../coordinator/serve/dashboard/words.js';

describe('workerKindsText', () => {
  it('counts each kind with its plural', () => {
    const of = (...kinds: ('thread' | 'process' | 'tab')[]) => kinds.map((kind) => ({ kind }));
    expect(workerKindsText(of('process', 'process', 'thread'))).toBe('1 thread, 2 processes');
    expect(workerKindsText(of('tab', 'tab', 'process'))).toBe('1 process, 2 tabs');
    expect(workerKindsText(of('thread', 'thread'))).toBe('2 threads');
    expect(workerKindsText([])).toBe('none connected');
  });
});
