import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { HistoryLine } from '../src/store/history.js';
import type { OutboxFile } from '../src/store/outbox.js';
import { isPlainFolder } from '../src/store/shared-folders.js';
import { FAST_CONFIG, inHome, untilInFolder, withDaemon } from './helpers/support.js';

/** Issue 11 item 6: two agents sharing one inbox through a symlink inside the home. */
describe('an inbox shared by two agents through a symlink', () => {
  it('is refused as a config_error for the linked agent; every task runs once, on the real one', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('a');
      await home.scriptedAgent('b');
      await fs.mkdir(home.path('agents/a/inbox'), { recursive: true });
      await fs.symlink('../a/inbox', home.path('agents/b/inbox'));
      const validate = await home.cli(['validate']);
      assert.notEqual(validate.code, 0, `validate refuses: ${validate.stdout}${validate.stderr}`);
      assert.match(validate.stdout + validate.stderr, /agents\/b.*inbox is the same folder as agents\/a\/inbox/);

      const ids = ['s1', 's2', 's3', 's4', 's5', 's6'];
      for (const id of ids) await home.inbox('a', id, { goal: 'once', input: { script: [{ sleep: 20 }, { result: id }] } });
      await withDaemon(home, async () => {
        await untilInFolder(home.path('state/a/done'), () => home.list('state/a/done'), (names) => names.length === ids.length, 'every task done by a', 30_000);
      });
      const runs = (await home.readLines<HistoryLine>('state/a/history.jsonl')).map((l) => l.task_id).sort();
      assert.deepEqual(runs, ids, 'each task ran once');
      assert.equal(await home.exists('state/b/history.jsonl'), false, 'b ran nothing');
      const outbox = await home.readJson<OutboxFile>('outbox/b/outbox.json');
      assert.ok(outbox.items.some((i) => i.kind === 'config_error' && i.status === 'open' && /share an inbox/.test(i.reason)));
    }));

  it('isPlainFolder: only a folder reached without a link is its own', () => {
    assert.equal(isPlainFolder({ agentDir: '/h/agents/a', inbox: '/h/agents/a/inbox' }, '/h/agents', 'a'), true);
    assert.equal(isPlainFolder({ agentDir: '/h/agents/a', inbox: null }, '/h/agents', 'a'), true);
    assert.equal(isPlainFolder({ agentDir: '/h/agents/b', inbox: '/h/agents/a/inbox' }, '/h/agents', 'b'), false);
    assert.equal(isPlainFolder({ agentDir: '/h/agents/a', inbox: '/h/agents/a/inbox' }, '/h/agents', 'b'), false);
  });
});
