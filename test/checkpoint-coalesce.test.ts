import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import { CheckpointCoalescer } from '../src/run/checkpoint-coalescer.js';
import { FAST_CONFIG, inHome } from './helpers/support.js';

const N = 20_000;

/** Issue 11 item 15: a flood of checkpoints never holds a result back into a limit. */
describe('checkpoints are coalesced', () => {
  it(`${N} checkpoints then a result: the run is done, and the last checkpoint's context is the agent's`, () =>
    inHome(FAST_CONFIG, async (home) => {
      // Written one fsync each, this many checkpoints take far longer than max_runtime.
      await home.scriptedAgent('flood', { budget: { max_runtime: '60s' } });
      await home.inbox('flood', 'f1', { goal: 'checkpoint a lot', input: { script: [{ checkpoints: N }, { result: 'finished' }] } });
      const daemon = home.startDaemon();
      try {
        const ended = await daemon.runEnded('flood', 1, 120_000);
        assert.equal(ended.outcome, 'done');
      } finally {
        await daemon.stop();
      }
      const history = await home.readLines<HistoryLine>('state/flood/history.jsonl');
      assert.deepEqual(history.map((h) => h.status), ['done']);
      const snapshot = await home.readJson<{ n: number }>('agents/flood/context-snapshot.json');
      assert.equal(snapshot.n, N, 'the last checkpoint wins');
    }));

  it(`${N} checkpoints then a crash: the next run resumes from the last one`, () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('flood', { budget: { max_runtime: '60s' } });
      await home.inbox('flood', 'f2', { goal: 'checkpoint, crash', input: { script: [{ checkpoints: N }, { exit: 1 }], after_checkpoint: [{ result: '$checkpoint' }] } });
      const daemon = home.startDaemon();
      try {
        assert.equal((await daemon.runEnded('flood', 1, 120_000)).outcome, 'failed');
        assert.equal((await daemon.runEnded('flood', 2, 120_000)).outcome, 'done');
      } finally {
        await daemon.stop();
      }
      const done = await home.readJson<{ output: unknown }>('state/flood/done/f2.json');
      assert.deepEqual(done.output, { n: N }, 'checkpoint.json held the last state when the run crashed');
    }));
});

describe('CheckpointCoalescer', () => {
  it('writes the first, then only the last of those that came while it was in flight', async () => {
    const written: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const c = new CheckpointCoalescer<number>(async (n) => {
      written.push(n);
      if (n === 1) await gate;
    });
    for (let i = 1; i <= 5; i++) c.submit(i);
    release();
    await c.flush();
    assert.deepEqual(written, [1, 5]);
  });

  it('a failed write is thrown by the next flush, once', async () => {
    const c = new CheckpointCoalescer<number>(async () => {
      throw new Error('disk full');
    });
    c.submit(1);
    await assert.rejects(c.flush(), /disk full/);
    await c.flush();
  });
});
