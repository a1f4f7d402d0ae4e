import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { reconcileSpend } from '../src/run/spend-floor.js';
import { FAST_CONFIG, inHome } from './helpers/support.js';

/** Issue 11 item 5: a task's spend survives the loss of its journal. */
describe('a journal lost while the daemon is stopped', () => {
  for (const [name, damage] of [
    ['emptied', ''],
    ['garbled', 'not json at all\n{"v":1,"seq":\n'],
  ] as const) {
    it(`${name}: the task keeps the spend its checkpoint records; a warning and an outbox item say so`, () =>
      inHome(FAST_CONFIG, async (home) => {
        await home.scriptedAgent('spender', { budget: { max_steps: 3 } });
        await home.inbox('spender', 't5', {
          goal: 'spend, stop, resume',
          input: {
            script: [{ models: 2 }, { checkpoint: { step: 2 } }, { log: 'sleeping' }, { sleep: 60_000 }, { result: 'not from here' }],
            after_checkpoint: [{ models: 3 }, { result: 'too much' }],
          },
        });
        const first = home.startDaemon();
        try {
          await first.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'sleeping', 'two model calls made');
        } finally {
          await first.stop();
        }
        await fs.writeFile(home.path('state/spender/journal/t5.jsonl'), damage);

        const second = home.startDaemon();
        try {
          await second.runEnded('spender');
          await second.waitForLog((l) => l.msg === 'journal is shorter than the checkpoint says; the checkpoint counts', 'the warning');
        } finally {
          await second.stop();
        }
        const last = (await home.readLines<HistoryLine>('state/spender/history.jsonl')).at(-1)!;
        assert.equal(last.status, 'limit', 'max_steps 3 holds across the lost journal');
        assert.equal(last.steps, 1, 'one model call was left, not three');
        const outbox = await home.readJson<OutboxFile>('outbox/spender/outbox.json');
        const lost = outbox.items.filter((i) => i.kind === 'journal_lost');
        assert.equal(lost.length, 1);
        assert.match(lost[0]!.reason, /t5/);
      }));
  }
});

describe('reconcileSpend', () => {
  const zero = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  it('takes the larger of journal and checkpoint, field by field, and says when the journal is short', () => {
    const r = reconcileSpend({ ...zero, steps: 1, costUsd: 0.5 }, { ...zero, steps: 2, costUsd: 0.1 });
    assert.deepEqual(r.spend, { ...zero, steps: 2, costUsd: 0.5 });
    assert.deepEqual(r.short, ['steps']);
  });
  it('no checkpoint spend (an older checkpoint): the journal alone', () => {
    assert.deepEqual(reconcileSpend({ ...zero, steps: 4 }, null), { spend: { ...zero, steps: 4 }, short: [] });
  });
});
