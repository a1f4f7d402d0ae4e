import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import pino from 'pino';
import { folderFileEvent, watchHome, type HomeEvent, type InboxFileEvent } from '../src/daemon/watcher.js';
import { linkDurable, removeDurable } from '../src/store/durable.js';
import { noteOwnChange, OWN_CHANGE_WINDOW_MS, takeAllOwnChanges, takeOwnChange } from '../src/store/own-changes.js';
import { HomePaths } from '../src/store/paths.js';
import { TestHome } from './helpers/home.js';

/** Resolves with the first item `push`ed that matches. */
function waiter<T>() {
  const seen: T[] = [];
  const waiting: { match: (x: T) => boolean; resolve: (x: T) => void }[] = [];
  return {
    seen,
    push(x: T) {
      seen.push(x);
      for (const w of [...waiting]) if (w.match(x)) waiting.splice(waiting.indexOf(w), 1) && w.resolve(x);
    },
    next(match: (x: T) => boolean): Promise<T> {
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
  };
}

describe('own changes', () => {
  it('a noted change is taken once, by an event of its kind, within its window', () => {
    const t = 1_000_000;
    noteOwnChange('/h/agents/a/current-task.json', 'removed', t);
    assert.equal(takeOwnChange('/h/agents/a/current-task.json', 'removed', t + 5), true);
    assert.equal(takeOwnChange('/h/agents/a/current-task.json', 'removed', t + 6), false, 'a second event is a person\'s');
    noteOwnChange('/h/agents/a/inbox/t.json', 'removed', t);
    assert.equal(takeOwnChange('/h/agents/a/inbox/t.json', 'added', t + 5), false, 'a file that came is not the daemon\'s removal');
    noteOwnChange('/h/agents/a/current-task.json', 'added', t);
    assert.equal(takeOwnChange('/h/agents/a/current-task.json', 'either', t + OWN_CHANGE_WINDOW_MS + 1), false, 'too late: not the daemon\'s');
    noteOwnChange('/h/agents/a/current-task.json', 'added', t);
    assert.equal(takeOwnChange('/h/agents/a/current-task.json', 'either', t + 1), true, 'a raw folder event says neither');
    // An inbox entry found gone: a promotion's link and unlink, merged into one event, use up both notes.
    noteOwnChange('/h/agents/a/inbox/p.json', 'changed', t);
    noteOwnChange('/h/agents/a/inbox/p.json', 'removed', t);
    assert.equal(takeAllOwnChanges('/h/agents/a/inbox/p.json', t + 5), true);
    assert.equal(takeOwnChange('/h/agents/a/inbox/p.json', 'either', t + 6), false, 'nothing left to swallow a person\'s write');
    assert.equal(takeAllOwnChanges('/h/agents/a/inbox/p.json', t + 7), false);
  });

  it('a folder\'s raw event names the definition, current task, context and outbox files, and nothing else', () => {
    const paths = new HomePaths('/h');
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'agent.yaml'), '/h/agents/a/agent.yaml');
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'agent.json'), '/h/agents/a/agent.json');
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'current-task.json'), '/h/agents/a/current-task.json');
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'context-snapshot.json'), '/h/agents/a/context-snapshot.json');
    assert.equal(folderFileEvent(paths, '/h/outbox/a', 'outbox.json'), '/h/outbox/a/outbox.json');
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'agent.js'), null);
    assert.equal(folderFileEvent(paths, '/h/agents/a', 'current-task.json.1234'), null, 'a write-file-atomic temp file');
    assert.equal(folderFileEvent(paths, '/h/agents/a', null), null);
    assert.equal(folderFileEvent(paths, '/h/agents/a/inbox', 't.json'), null, 'inbox files come from chokidar itself');
    assert.equal(folderFileEvent(paths, '/h/agents', 'a'), null, 'agent folders come from chokidar itself');
    assert.equal(folderFileEvent(paths, '/h/outbox/a', 'handoff.json'), null);
    assert.equal(folderFileEvent(paths, '/h/agents/.a', 'agent.yaml'), null, 'a hidden folder is not an agent');
  });
});

describe('the watcher and the daemon\'s own moves', () => {
  // A bound, not a sleep: a lost event fails here instead of hanging the suite.
  it('a promotion\'s link and unlinks raise no event; a person\'s writes to the same names are seen', { timeout: 120_000 }, async (t) => {
    const home = await TestHome.create('');
    t.after(() => fs.rm(home.root, { recursive: true, force: true }));
    await home.write('agents/a/agent.yaml', 'version: "1"\ncommand: [node, a.js]\n');
    await home.write('agents/b/agent.yaml', 'version: "1"\ncommand: [node, b.js]\n');
    await home.inbox('a', 't', { goal: 'x' });
    const paths = home.paths;
    const events = waiter<HomeEvent>();
    const index = waiter<InboxFileEvent>();
    const watcher = watchHome(paths, pino({ level: 'silent' }), (e) => events.push(e), (e) => index.push(e));
    t.after(() => watcher.close());
    await watcher.ready();

    // The daemon promotes t.json and then finishes it, as store/tasks.ts does.
    const inboxFile = paths.inboxEntry('a', 't.json');
    const removed = index.next((e) => e.name === 't.json' && e.kind === 'removed');
    await linkDurable(inboxFile, paths.currentTask('a'));
    await removeDurable(inboxFile);
    await removeDurable(paths.currentTask('a'));
    await removed; // the index is told of the daemon's own removal...
    // ...and a later event proves the raw events of the link and unlink came and went: one inotify queue, in order.
    const marker = events.next((e) => e.kind === 'definition' && e.agent === 'b');
    await fs.appendFile(paths.agentDir('b') + '/agent.yaml', '# touched\n');
    await marker;
    assert.deepEqual(events.seen.filter((e) => 'agent' in e && e.agent === 'a'), [], 'no event for the daemon\'s own moves');

    // A person writes the same names: each is seen.
    const current = events.next((e) => e.kind === 'task' && e.agent === 'a');
    await fs.writeFile(paths.currentTask('a'), JSON.stringify({ goal: 'by hand' }));
    await current;
    const queued = Promise.all([index.next((e) => e.name === 't.json' && e.kind === 'added'), events.next((e) => e.kind === 'task' && e.agent === 'a')]);
    events.seen.length = 0;
    await home.inbox('a', 't', { goal: 'again' });
    await queued;
    const edited = events.next((e) => e.kind === 'definition' && e.agent === 'a');
    await fs.appendFile(paths.agentDir('a') + '/agent.yaml', 'description: edited in place\n');
    await edited;
  });
});
