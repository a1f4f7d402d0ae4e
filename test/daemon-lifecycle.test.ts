import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestHome } from './helpers/home.js';
import { FAST_CONFIG } from './helpers/support.js';

describe('the daemon runs tasks from files', () => {
  let home: TestHome;
  before(async () => {
    home = await TestHome.create(FAST_CONFIG);
  });
  after(async () => home.remove());

  it('promotes an inbox task, runs it and files the result in done/', async () => {
    await home.scriptedAgent('a1');
    await home.write('agents/a1/inbox/first.json', {
      goal: 'say hello',
      input: { script: [{ model: { messages: [{ role: 'user', content: 'hello' }] } }, { checkpoint: { step: 1 } }, { result: '$last' }] },
    });
    const daemon = home.startDaemon();
    try {
      await daemon.started();
      const ended = await daemon.runEnded('a1');
      assert.equal(ended.outcome, 'done');
      const done = await home.readJson<{ status: string; task: { id: string; created_at: string }; output: { response: { content: string } } }>('state/a1/done/first.json');
      assert.equal(done.status, 'done');
      assert.equal(done.task.id, 'first', 'a missing id is filled in from the file name');
      assert.ok(!Number.isNaN(Date.parse(done.task.created_at)), 'a missing created_at is filled in');
      assert.equal(done.output.response.content, 'mock reply: hello');
      assert.equal(await home.exists('agents/a1/inbox/first.json'), false);
      assert.equal(await home.exists('agents/a1/current-task.json'), false);
      const [history] = await home.readLines<{ status: string; trigger: string; steps: number; models: string[]; agent_version: string; definition_hash: string }>('state/a1/history.jsonl');
      assert.equal(history?.status, 'done');
      assert.equal(history?.trigger, 'inbox');
      assert.equal(history?.steps, 1);
      assert.deepEqual(history?.models, ['mock/echo']);
      assert.equal(history?.agent_version, '1');
      assert.match(history?.definition_hash ?? '', /^[0-9a-f]{64}$/);
      const runLines = daemon.logs.filter((l) => l.run_id);
      assert.ok(runLines.length > 0 && runLines.every((l) => l.agent === 'a1' && l.task_id === 'first'), 'every run log line carries agent, task_id and run_id');
    } finally {
      await daemon.stop();
    }
  });

  it('promotes by priority, then by age, one task at a time', async () => {
    await home.scriptedAgent('order');
    const done = { script: [{ result: 'ok' }] };
    const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000).toISOString();
    await home.inbox('order', 'old-low', { goal: 'x', priority: 0, created_at: hoursAgo(3), input: done });
    await home.inbox('order', 'new-high', { goal: 'x', priority: 5, created_at: hoursAgo(0), input: done });
    await home.inbox('order', 'old-high', { goal: 'x', priority: 5, created_at: hoursAgo(2), input: done });
    const daemon = home.startDaemon();
    try {
      await daemon.runEnded('order', 3);
      const history = await home.readLines<{ task_id: string; started_at: string; ended_at: string }>('state/order/history.jsonl');
      assert.deepEqual(history.map((h) => h.task_id), ['old-high', 'new-high', 'old-low']);
      for (let i = 1; i < history.length; i++) {
        assert.ok(history[i]!.started_at >= history[i - 1]!.ended_at, 'one task of an agent at a time');
      }
    } finally {
      await daemon.stop();
    }
  });
});
