import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import { describe, it } from 'node:test';
import type { TaskCheckpoint } from '../src/store/checkpoint.js';
import type { HistoryLine } from '../src/store/history.js';
import { HomePaths } from '../src/store/paths.js';
import { completeTask, deadLetterTask, settleCurrentTask } from '../src/store/current-task.js';
import { promoteNext } from '../src/store/promotion.js';
import { deadLetterMalformed, type DeadLetterRecord } from '../src/store/dead-letters.js';
import type { DoneRecord } from '../src/store/done-records.js';
import type { Task } from '../src/store/tasks.js';
import { FAST_CONFIG, inHome, isAlive } from './helpers/support.js';
import { TestHome, type DaemonProcess } from './helpers/home.js';

/**
 * A daemon killed for real at a known point (the agent has checkpointed and
 * logged that it sleeps), then started again on the same home.
 */

interface Received {
  type: string;
  reason?: string;
  resume?: { checkpoint: unknown; handoff: { reason: string } | null };
}

/** Checkpoints, says so, then sleeps; started again from its checkpoint, it finishes. */
function sleeperTask(firstSteps: Record<string, unknown>[] = []) {
  return {
    goal: 'work, get interrupted, resume',
    input: {
      trace_file: 'trace.jsonl',
      script: [
        ...firstSteps,
        { model: { messages: [{ role: 'user', content: 'step one' }] } },
        { checkpoint: { step: 1 } },
        { log: 'sleeping' },
        { sleep: 60_000 },
        { result: 'not from here' },
      ],
      after_checkpoint: [{ log: 'resumed' }, { result: 'finished after resume' }],
    },
  };
}

const sleeping = (d: DaemonProcess) => d.waitForLog((l) => l.msg === 'agent log' && l.agent_msg === 'sleeping', 'the agent to reach its sleep');

/** Where copies of task `id` are: inbox, current, done, dead-letter. */
async function placesOf(home: TestHome, agent: string, id: string): Promise<string[]> {
  const places: string[] = [];
  for (const name of await home.list(`agents/${agent}/inbox`)) {
    const task = await home.readJson<{ id?: string }>(`agents/${agent}/inbox/${name}`).catch(() => ({ id: undefined }));
    if (name === `${id}.json` || task.id === id) places.push(`inbox/${name}`);
  }
  if (await home.exists(`agents/${agent}/current-task.json`)) {
    const current = await home.readJson<{ id?: string }>(`agents/${agent}/current-task.json`);
    if (current.id === id) places.push('current');
  }
  if (await home.exists(`state/${agent}/done/${id}.json`)) places.push('done');
  if (await home.exists(`state/dead-letter/${agent}/${id}.json`)) places.push('dead-letter');
  return places;
}

describe('a daemon killed or stopped mid-run', () => {
  it('kill -9 mid-run: on restart the task resumes, finishes once, and the orphaned process group is killed', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('worker');
      // The agent itself exits when its stdin closes with the daemon; the child it spawned does not.
      await home.inbox('worker', 'k1', sleeperTask([{ spawn_child: 'orphan.pid' }]));

      const first = home.startDaemon();
      try {
        await sleeping(first);
        first.child.kill('SIGKILL');
        assert.equal((await first.exited).signal, 'SIGKILL');
      } finally {
        await first.stop();
      }
      const orphan = Number(await fs.readFile(home.path('agents/worker/orphan.pid'), 'utf8'));
      assert.ok(isAlive(orphan), 'the killed daemon left the agent process group behind');
      const checkpoint = await home.readJson<TaskCheckpoint>('state/worker/checkpoint.json');
      assert.ok(checkpoint.active_run, 'the checkpoint shows the run that was in progress');
      assert.deepEqual(checkpoint.state, { step: 1 });

      const second = home.startDaemon();
      try {
        const ended = await second.runEnded('worker');
        assert.equal(ended.outcome, 'done');
        assert.equal(isAlive(orphan), false, 'the restarted daemon killed the orphaned process group');
        assert.ok(second.logs.some((l) => l.msg === 'agent log' && l.agent_msg === 'resumed'), 'the agent started from its checkpoint');
      } finally {
        await second.stop();
      }

      const history = await home.readLines<HistoryLine>('state/worker/history.jsonl');
      assert.deepEqual(
        history.map((h) => [h.run_id, h.status, h.trigger]),
        [
          [checkpoint.active_run.run_id, 'interrupted', 'inbox'],
          [history[1]?.run_id, 'done', 'resume'],
        ],
      );
      assert.equal(history[0]?.error_category, 'crash');
      assert.equal(history[0]?.steps, 1, 'the killed run is charged what its journal shows');
      assert.deepEqual(await placesOf(home, 'worker', 'k1'), ['done'], 'exactly one copy, in done/');
      assert.deepEqual(await home.list('state/worker/done'), ['k1.json']);
      const done = await home.readJson<DoneRecord>('state/worker/done/k1.json');
      assert.equal(done.output, 'finished after resume');
      assert.deepEqual(done.runs, history.map((h) => h.run_id));
      assert.equal(await home.exists('state/worker/checkpoint.json'), false);
    }));

  it('SIGTERM mid-run: stop reason shutdown, a handoff, exit 0, and the task resumes from its checkpoint on restart', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('worker');
      await home.inbox('worker', 's1', sleeperTask());

      const first = home.startDaemon();
      try {
        await sleeping(first);
        const [ended, exit] = await Promise.all([first.runEnded('worker'), first.stop('SIGTERM')]);
        assert.equal(ended.outcome, 'interrupted');
        assert.deepEqual(exit, { code: 0, signal: null });
      } finally {
        await first.stop();
      }
      const stops = (await home.readLines<Received>('agents/worker/trace.jsonl')).filter((m) => m.type === 'stop');
      assert.deepEqual(stops.map((m) => m.reason), ['shutdown']);
      const handoff = await home.readJson<{ reason: string; task_id: string; summary: string; checkpoint: unknown }>('outbox/worker/handoff.json');
      assert.equal(handoff.reason, 'shutdown');
      assert.equal(handoff.task_id, 's1');
      assert.equal(handoff.summary, 'stopped: shutdown', "the agent's own last words");
      assert.deepEqual(await placesOf(home, 'worker', 's1'), ['current'], 'the task stays current, resumable');

      const second = home.startDaemon();
      try {
        assert.equal((await second.runEnded('worker')).outcome, 'done');
      } finally {
        await second.stop();
      }
      const starts = (await home.readLines<Received>('agents/worker/trace.jsonl')).filter((m) => m.type === 'start');
      assert.equal(starts.length, 2);
      assert.notEqual(starts[1]?.resume?.checkpoint ?? null, null, 'the second run gets the checkpoint');
      assert.equal(starts[1]?.resume?.handoff?.reason, 'shutdown', 'and the handoff');
      const history = await home.readLines<HistoryLine>('state/worker/history.jsonl');
      assert.deepEqual(history.map((h) => [h.status, h.trigger]), [
        ['interrupted', 'inbox'],
        ['done', 'resume'],
      ]);
      assert.equal((await home.readJson<DoneRecord>('state/worker/done/s1.json')).output, 'finished after resume');
      assert.deepEqual(await placesOf(home, 'worker', 's1'), ['done']);
    }));

  it('a second daemon does not run an agent the first is running, and takes it over once the lock goes stale', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent('shared');
      await home.inbox('shared', 'l1', sleeperTask());

      const first = home.startDaemon();
      let second: DaemonProcess | null = null;
      try {
        await sleeping(first);
        second = home.startDaemon();
        await second.started();
        await second.waitForLog((l) => l.msg === 'agent locked by another process' && l.agent === 'shared', 'the second daemon to find the agent locked');
        assert.equal(second.logs.filter((l) => l.msg === 'run started').length, 0, 'the second daemon starts no run of a locked agent');

        // As if the first daemon ran on another machine: the second cannot tell it died, only that its lease stopped.
        await fs.writeFile(home.path('state/shared.owner'), JSON.stringify({ host: `not-${os.hostname()}`, pid: 1 }));
        first.child.kill('SIGKILL');
        await first.exited;
        const killedAt = Date.now();

        const started = await second.waitForLog((l) => l.msg === 'run started' && l.agent === 'shared', 'the second daemon to take the agent over', 15_000);
        assert.ok(started.time as number >= killedAt + 500, `took over ${(started.time as number) - killedAt}ms after the kill, before the 2s lease could go stale`);
        assert.equal(started.trigger, 'resume');
        assert.equal((await second.runEnded('shared')).outcome, 'done');
      } finally {
        await first.stop();
        await second?.stop();
      }
      const history = await home.readLines<HistoryLine>('state/shared/history.jsonl');
      assert.deepEqual(history.map((h) => h.status), ['interrupted', 'done']);
      assert.equal((await home.readJson<DoneRecord>('state/shared/done/l1.json')).output, 'finished after resume');
      assert.deepEqual(await placesOf(home, 'shared', 'l1'), ['done']);
    }));
});

describe('store crash states settle to exactly one place', () => {
  const now = new Date('2026-11-24T12:00:00Z');
  const agent = 'keeper';
  /** A fresh home per test; the store functions are called on it directly, as a claim would after a crash. */
  const inStore = (body: (home: TestHome, paths: HomePaths) => Promise<void>) => () => inHome(undefined, (home) => body(home, new HomePaths(home.root)));
  const taskOf = (id: string, goal = 'do it'): Task => ({ id, created_at: '2026-11-24T11:00:00Z', goal });
  const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';

  it('a task linked into current-task.json but still in the inbox stays current only', inStore(async (home, paths) => {
    await home.write(`agents/${agent}/inbox/t1.json`, json(taskOf('t1')));
    await fs.link(home.path(`agents/${agent}/inbox/t1.json`), home.path(`agents/${agent}/current-task.json`));
    const settled = await settleCurrentTask(paths, agent, now);
    assert.equal(settled.kind, 'task');
    assert.equal(settled.kind === 'task' && settled.task.id, 't1');
    assert.deepEqual(await placesOf(home, agent, 't1'), ['current']);
  }));

  it('a done record beside a leftover current-task.json: the move finished, the leftover goes', inStore(async (home, paths) => {
    const task = taskOf('t2');
    await home.write(`agents/${agent}/current-task.json`, json(task));
    await home.write(`state/${agent}/done/t2.json`, { v: 1, task, status: 'done', output: 'ok', finished_at: now.toISOString(), runs: ['r1'] } satisfies DoneRecord);
    await home.write(`state/${agent}/checkpoint.json`, { v: 1, task_id: 't2' });
    assert.deepEqual(await settleCurrentTask(paths, agent, now), { kind: 'none' });
    assert.deepEqual(await placesOf(home, agent, 't2'), ['done']);
    assert.equal(await home.exists(`state/${agent}/checkpoint.json`), false, 'its checkpoint goes with it');
  }));

  it('a different task reusing the id of a done one is queued under a fresh id, not lost', inStore(async (home, paths) => {
    const old = taskOf('t3', 'the old task');
    const fresh = taskOf('t3', 'a new task, same id');
    await home.write(`state/${agent}/done/t3.json`, { v: 1, task: old, status: 'done', output: 'ok', finished_at: now.toISOString(), runs: ['r1'] } satisfies DoneRecord);
    await home.write(`agents/${agent}/current-task.json`, json(fresh));
    assert.deepEqual(await settleCurrentTask(paths, agent, now), { kind: 'none' });
    const inbox = await home.list(`agents/${agent}/inbox`);
    assert.equal(inbox.length, 1);
    const requeued = await home.readJson<Task>(`agents/${agent}/inbox/${inbox[0]}`);
    assert.equal(requeued.goal, 'a new task, same id');
    assert.match(requeued.id, /^t3-r[0-9a-f]{8}$/);
    assert.equal(inbox[0], `${requeued.id}.json`);
    assert.deepEqual(await placesOf(home, agent, 't3'), ['done']);
    assert.deepEqual(await placesOf(home, agent, requeued.id), [`inbox/${inbox[0]}`]);
  }));

  it('a dead-letter record beside a leftover current-task.json: the leftover goes', inStore(async (home, paths) => {
    const task = taskOf('t4');
    await home.write(`agents/${agent}/current-task.json`, json(task));
    await home.write(`state/dead-letter/${agent}/t4.json`, {
      v: 1,
      agent,
      task,
      error: { category: 'crash', message: 'agent exited with code 3' },
      attempts: 3,
      runs: ['r1', 'r2', 'r3'],
      source: 'current',
      dead_lettered_at: now.toISOString(),
    } satisfies DeadLetterRecord);
    assert.deepEqual(await settleCurrentTask(paths, agent, now), { kind: 'none' });
    assert.deepEqual(await placesOf(home, agent, 't4'), ['dead-letter']);
  }));

  it('a dlq retry that left both the inbox copy and the dead letter: the task is promoted and the record removed', inStore(async (home, paths) => {
    const task = taskOf('t5');
    await home.write(`state/dead-letter/${agent}/t5.json`, {
      v: 1,
      agent,
      task,
      error: { category: 'crash', message: 'agent exited with code 3' },
      attempts: 3,
      runs: ['r1'],
      source: 'current',
      dead_lettered_at: now.toISOString(),
    } satisfies DeadLetterRecord);
    await home.write(`agents/${agent}/inbox/t5.json`, json(task));
    const promoted = await promoteNext(paths, agent, now);
    assert.equal(promoted.kind, 'promoted');
    assert.deepEqual(await placesOf(home, agent, 't5'), ['current']);
  }));

  it('a dlq retry of a malformed task that left both copies keeps one: the inbox file, dead-lettered again', inStore(async (home, paths) => {
    const raw = '{"id": "t6", "goal": ';
    await home.write(`state/dead-letter/${agent}/t6.json`, {
      v: 1,
      agent,
      task: null,
      raw,
      error: { category: 'bad_input', message: 'inbox/t6.json: is not valid JSON' },
      attempts: 0,
      runs: [],
      source: 'inbox',
      dead_lettered_at: now.toISOString(),
    } satisfies DeadLetterRecord);
    await home.write(`agents/${agent}/inbox/t6.json`, raw);
    // A claim a minute later: the file is past the quiet time a half-written file gets.
    const promoted = await promoteNext(paths, agent, new Date(Date.now() + 60_000));
    assert.deepEqual(promoted, { kind: 'dead_lettered', ids: ['t6'] });
    assert.deepEqual(await placesOf(home, agent, 't6'), ['dead-letter']);
    assert.equal((await home.readJson<DeadLetterRecord>(`state/dead-letter/${agent}/t6.json`)).raw, raw);
  }));

  it('a dlq retry of a file its writer finished after the dead letter is promoted under its own id while the record is still there', inStore(async (home, paths) => {
    const text = json(taskOf('t8'));
    // Dead-lettered half-written: the record's raw is the first bytes; the kept file is the writer's file itself.
    await home.write('writing.json', text.slice(0, 20));
    await deadLetterMalformed(paths, agent, 't8', Buffer.from(text.slice(0, 20)), 'inbox/t8.json: is not valid JSON', 'inbox', now, home.path('writing.json'));
    await fs.appendFile(home.path('writing.json'), text.slice(20)); // the writer goes on
    // `dlq retry` has put the whole task back and not yet removed the record (store/dead-letters.ts retryDeadLetter).
    await home.write(`agents/${agent}/inbox/t8.json`, text);
    const promoted = await promoteNext(paths, agent, new Date(Date.now() + 60_000));
    assert.equal(promoted.kind, 'promoted');
    assert.deepEqual(await placesOf(home, agent, 't8'), ['current'], 'the same id, not re-queued as t8-r...');
  }));

  it('an edited current-task.json at completion is re-queued under a fresh id, not lost', inStore(async (home, paths) => {
    const claimed = taskOf('t7', 'the goal as claimed');
    const claimedBytes = Buffer.from(json(claimed));
    await home.write(`agents/${agent}/current-task.json`, claimedBytes.toString());
    // A person edits the task while it runs.
    await home.write(`agents/${agent}/current-task.json`, json({ ...claimed, goal: 'the goal as edited' }));
    await completeTask(paths, agent, claimedBytes, { v: 1, task: claimed, status: 'done', output: 'ok', finished_at: now.toISOString(), runs: ['r1'] });

    assert.deepEqual(await placesOf(home, agent, 't7'), ['done']);
    assert.equal((await home.readJson<DoneRecord>(`state/${agent}/done/t7.json`)).task.goal, 'the goal as claimed');
    const inbox = await home.list(`agents/${agent}/inbox`);
    assert.equal(inbox.length, 1, 'the edit is queued');
    const requeued = await home.readJson<Task>(`agents/${agent}/inbox/${inbox[0]}`);
    assert.equal(requeued.goal, 'the goal as edited');
    assert.notEqual(requeued.id, 't7');
    assert.deepEqual(await placesOf(home, agent, requeued.id), [`inbox/${inbox[0]}`]);
  }));

  it('an unchanged current-task.json at dead-lettering is not re-queued', inStore(async (home, paths) => {
    const task = taskOf('t8');
    const bytes = Buffer.from(json(task));
    await home.write(`agents/${agent}/current-task.json`, bytes.toString());
    await deadLetterTask(paths, agent, bytes, {
      v: 1,
      agent,
      task,
      error: { category: 'crash', message: 'agent exited with code 3' },
      attempts: 3,
      runs: ['r1', 'r2', 'r3'],
      source: 'current',
      dead_lettered_at: now.toISOString(),
    });
    assert.deepEqual(await placesOf(home, agent, 't8'), ['dead-letter']);
    assert.deepEqual(await home.list(`agents/${agent}/inbox`), []);
  }));

  it('settling twice changes nothing the second time', inStore(async (home, paths) => {
    const task = taskOf('t9');
    await home.write(`agents/${agent}/inbox/t9.json`, json(task));
    await fs.link(home.path(`agents/${agent}/inbox/t9.json`), home.path(`agents/${agent}/current-task.json`));
    await settleCurrentTask(paths, agent, now);
    const again = await settleCurrentTask(paths, agent, now);
    assert.equal(again.kind, 'task');
    assert.deepEqual(await placesOf(home, agent, 't9'), ['current']);
  }));
});
