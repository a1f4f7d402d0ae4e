import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { InboxIndex } from '../src/store/inbox-index.js';
import { HomePaths } from '../src/store/paths.js';
import { promoteNext } from '../src/store/promotion.js';
import type { Task } from '../src/store/tasks.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import type { TestHome } from './helpers/home.js';

/** The daemon's inbox index (store/inbox-index.ts): it decides the order only; the files decide the content. */

const agent = 'a';
const now = new Date('2026-01-02T00:00:00Z');

function task(id: string, priority: number, minute: number): Task {
  return { id, goal: `goal ${id}`, priority, created_at: `2026-01-01T00:${String(minute).padStart(2, '0')}:00Z` };
}

async function current(home: TestHome): Promise<Task> {
  const t = await home.readJson<Task>(`agents/${agent}/current-task.json`);
  await fs.rm(home.path(`agents/${agent}/current-task.json`));
  return t;
}

async function promoted(home: TestHome, paths: HomePaths, index: InboxIndex): Promise<string> {
  const result = await promoteNext(paths, agent, now, undefined, index);
  assert.equal(result.kind, 'promoted');
  return (await current(home)).id;
}

describe('inbox index', () => {
  it('promotes in the same order as a full scan: priority, then created_at, then id', () =>
    inHome(undefined, async (home) => {
      const paths = new HomePaths(home.root);
      const tasks = [task('low-old', 0, 1), task('high-new', 5, 9), task('high-old', 5, 2), task('mid', 1, 0), task('b-tie', 0, 1), task('a-tie', 0, 1)];
      for (const t of tasks) await home.write(`agents/${agent}/inbox/${t.id}.json`, t);
      const index = new InboxIndex();
      const order: string[] = [];
      for (let i = 0; i < tasks.length; i++) order.push(await promoted(home, paths, index));
      assert.deepEqual(order, ['high-old', 'high-new', 'mid', 'a-tie', 'b-tie', 'low-old']);
      assert.equal((await promoteNext(paths, agent, now, undefined, index)).kind, 'empty');
    }));

  it('a file edited after it was indexed is read again on the watcher event and ordered by its new priority', () =>
    inHome(undefined, async (home) => {
      const paths = new HomePaths(home.root);
      const index = new InboxIndex();
      for (const t of [task('first', 2, 0), task('second', 1, 0), task('third', 0, 0)]) await home.write(`agents/${agent}/inbox/${t.id}.json`, t);
      assert.equal(await promoted(home, paths, index), 'first');
      await home.write(`agents/${agent}/inbox/third.json`, task('third', 9, 0));
      index.added(agent, 'third.json');
      assert.equal(await promoted(home, paths, index), 'third');
      assert.equal(await promoted(home, paths, index), 'second');
    }));

  it('verified on claim: a file removed or lowered behind its back (no event) is not promoted by a stale key', () =>
    inHome(undefined, async (home) => {
      const paths = new HomePaths(home.root);
      const index = new InboxIndex();
      for (const t of [task('gone', 9, 0), task('lowered', 8, 0), task('next', 5, 0), task('last', 1, 0), task('x', 0, 0)]) await home.write(`agents/${agent}/inbox/${t.id}.json`, t);
      assert.equal(await promoted(home, paths, index), 'gone');
      await home.write(`agents/${agent}/inbox/gone.json`, task('gone', 9, 0)); // back, but the index was told nothing
      await fs.rm(home.path(`agents/${agent}/inbox/gone.json`));
      await home.write(`agents/${agent}/inbox/lowered.json`, task('lowered', 0, 30));
      assert.equal(await promoted(home, paths, index), 'next');
      assert.equal(await promoted(home, paths, index), 'last');
      assert.equal(await promoted(home, paths, index), 'x');
      assert.equal(await promoted(home, paths, index), 'lowered');
    }));

  it('a file added without an event is found by reconcile with a listing (the daemon sweep)', () =>
    inHome(undefined, async (home) => {
      const paths = new HomePaths(home.root);
      const index = new InboxIndex();
      for (const t of [task('one', 0, 0), task('two', 0, 1)]) await home.write(`agents/${agent}/inbox/${t.id}.json`, t);
      assert.equal(await promoted(home, paths, index), 'one');
      await home.write(`agents/${agent}/inbox/urgent.json`, task('urgent', 9, 0));
      index.reconcile(agent, await fs.readdir(home.path(`agents/${agent}/inbox`)));
      assert.equal(await promoted(home, paths, index), 'urgent');
      assert.equal(await promoted(home, paths, index), 'two');
    }));

  it('a malformed file is dead-lettered once it is past its quiet time, as without the index', () =>
    inHome(undefined, async (home) => {
      const paths = new HomePaths(home.root);
      const index = new InboxIndex();
      await home.write(`agents/${agent}/inbox/good.json`, task('good', 0, 0));
      await home.write(`agents/${agent}/inbox/broken.json`, '{"goal": ');
      const result = await promoteNext(paths, agent, new Date(Date.now() + 60_000), undefined, index);
      assert.equal(result.kind, 'promoted');
      assert.deepEqual(result.kind === 'promoted' && result.deadLettered, ['broken']);
      assert.ok(await home.exists(`state/dead-letter/${agent}/broken.json`));
    }));

  it('through the daemon: tasks written into a deep inbox while it runs are run by priority', () =>
    inHome(FAST_CONFIG, async (home) => {
      await home.scriptedAgent(agent);
      const base = Date.now() - 60_000;
      const quick = (t: Task): Task => ({ ...t, created_at: new Date(base + Date.parse(t.created_at) - Date.parse('2026-01-01T00:00:00Z')).toISOString(), input: { script: [{ result: 'ok' }] } });
      // Queued before the start: the first promotion builds the index from a listing.
      for (let i = 0; i < 30; i++) await home.write(`agents/${agent}/inbox/q${String(i).padStart(2, '0')}.json`, quick(task(`q${String(i).padStart(2, '0')}`, 0, i)));
      await withDaemon(home, async (daemon) => {
        await daemon.waitForLog((l) => l.msg === 'run ended', 'a first run');
        // Added while it runs: known to the index by the watcher's event only.
        await home.write(`agents/${agent}/inbox/.urgent.tmp`, quick(task('urgent', 9, 59)));
        await fs.rename(home.path(`agents/${agent}/inbox/.urgent.tmp`), home.path(`agents/${agent}/inbox/urgent.json`));
        await daemon.waitForCount((l) => l.msg === 'run ended', 31, 'every task to run', 180_000);
        const order = daemon.logs.filter((l) => l.msg === 'run ended').map((l) => l.task_id as string);
        assert.equal(new Set(order).size, 31, 'each task ran once');
        const urgentAt = order.indexOf('urgent');
        const queuedAfter = order.slice(urgentAt + 1);
        assert.deepEqual(queuedAfter, [...queuedAfter].sort(), 'the rest in created_at order');
        assert.ok(queuedAfter.length > 0, 'urgent went ahead of the tasks still queued');
      });
    }));
});
