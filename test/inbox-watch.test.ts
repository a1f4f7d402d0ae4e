import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pino from 'pino';
import { InboxWatches, type InboxEntryChange } from '../src/daemon/inbox-watch.js';
import { FAST_CONFIG, inHome, withDaemon } from './helpers/support.js';
import { SCRIPTED_AGENT } from './helpers/home.js';

/**
 * Inboxes are watched by an fs.watch each (daemon/inbox-watch.ts), not by
 * chokidar (README.md, Benchmark: P7). The daemon's sweep is set to an hour
 * here, so every task below is found by an event, never by the sweep.
 */
const NO_SWEEP = `${FAST_CONFIG}sweep_interval: 1h\n`;

const resultTask = (id: string, result: unknown) => ({ id, created_at: new Date().toISOString(), goal: 'answer', input: { script: [{ result }] } });
const definition = JSON.stringify({ version: '1', command: ['node', SCRIPTED_AGENT], model: 'mock/echo' });

/** Resolves with the first change `push`ed that matches. */
function changes() {
  const seen: [string, InboxEntryChange][] = [];
  const waiting: { match: (f: string, c: InboxEntryChange) => boolean; resolve: () => void }[] = [];
  return {
    seen,
    push(file: string, change: InboxEntryChange) {
      seen.push([file, change]);
      for (const w of [...waiting]) if (w.match(file, change)) waiting.splice(waiting.indexOf(w), 1) && w.resolve();
    },
    next(match: (f: string, c: InboxEntryChange) => boolean): Promise<void> {
      return new Promise((resolve) => waiting.push({ match, resolve }));
    },
  };
}

describe('inbox watches', () => {
  it('name each entry that came or went, survive a missing folder, and watch a folder made again', async (t) => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), 'agentd-test-'));
    t.after(() => fs.rm(root, { recursive: true, force: true }));
    const inbox = (agent: string) => path.join(root, agent, 'inbox');
    const seen = changes();
    const watches = new InboxWatches(inbox, pino({ level: 'silent' }), (f, c) => seen.push(f, c));
    t.after(() => watches.close());

    watches.watch('a'); // no folder yet: nothing to watch, no throw
    assert.equal(watches.size, 0);
    // A folder name that is no agent name (store/paths.ts refuses it): skipped, never a crash (test/adversarial.test.ts).
    const refusing = new InboxWatches(() => { throw new Error('agent name "bad name" must match'); }, pino({ level: 'silent' }), () => undefined);
    assert.doesNotThrow(() => refusing.watch('bad name'));
    assert.equal(refusing.size, 0);
    await fs.mkdir(inbox('a'), { recursive: true });
    watches.watch('a');
    assert.equal(watches.size, 1);

    const task = path.join(inbox('a'), 't.json');
    const came = seen.next((f, c) => f === task && c === 'present');
    await fs.writeFile(task, '{}');
    await came;
    const went = seen.next((f, c) => f === task && c === 'removed');
    await fs.unlink(task);
    await went;

    // The folder is replaced: the new one is watched once watch() is called again.
    await fs.rm(inbox('a'), { recursive: true });
    await fs.mkdir(inbox('a'));
    watches.watch('a');
    const again = path.join(inbox('a'), 'u.json');
    const cameAgain = seen.next((f, c) => f === again && c === 'present');
    await fs.writeFile(again, '{}');
    await cameAgain;

    watches.close();
    assert.equal(watches.size, 0);
  });

  it('a task in an agent folder moved in while the daemon runs, and one in an inbox folder made again, are both run without the sweep', () =>
    inHome(NO_SWEEP, async (home) => {
      await home.scriptedAgent('first');
      await withDaemon(home, async (daemon) => {
        await daemon.started();

        // A whole agent folder, inbox and task included, renamed into agents/ in one step.
        const staged = home.path('staged');
        await fs.mkdir(path.join(staged, 'inbox'), { recursive: true });
        await fs.writeFile(path.join(staged, 'agent.json'), definition);
        await fs.writeFile(path.join(staged, 'inbox', 'm1.json'), JSON.stringify(resultTask('m1', 'moved in')));
        await fs.rename(staged, home.path('agents', 'moved'));
        assert.equal((await daemon.runEnded('moved')).outcome, 'done');
        assert.equal((await home.readJson<{ output: unknown }>('state/moved/done/m1.json')).output, 'moved in');

        // The inbox folder itself removed and made again, then a task written into the new one.
        await home.inbox('first', 'f1', resultTask('f1', 'before'));
        assert.equal((await daemon.runEnded('first')).outcome, 'done');
        await fs.rm(home.path('agents', 'first', 'inbox'), { recursive: true });
        await fs.mkdir(home.path('agents', 'first', 'inbox'));
        await home.inbox('first', 'f2', resultTask('f2', 'after the folder was made again'));
        assert.equal((await daemon.runEnded('first', 2)).outcome, 'done');
        assert.equal((await home.readJson<{ output: unknown }>('state/first/done/f2.json')).output, 'after the folder was made again');

        // And a task renamed into the inbox, as a person's script would.
        await fs.writeFile(home.path('f3.json'), JSON.stringify(resultTask('f3', 'renamed in')));
        await fs.rename(home.path('f3.json'), home.path('agents', 'first', 'inbox', 'f3.json'));
        assert.equal((await daemon.runEnded('first', 3)).outcome, 'done');
        assert.equal((await home.readJson<{ output: unknown }>('state/first/done/f3.json')).output, 'renamed in');
      });
    }));

  it('an agent folder made while the daemon runs has a watch of its own: an edit of its definition is read, and a task in its inbox runs', () =>
    inHome(NO_SWEEP, async (home) => {
      await home.scriptedAgent('first');
      await withDaemon(home, async (daemon) => {
        await daemon.waitForLog((l) => l.msg === 'file watcher ready', 'the watcher ready');
        const loaded = (version: string) => daemon.waitForLog((l) => l.msg === 'agent definition loaded' && l.agent === 'late' && l.version === version, `late's definition ${version}`);
        await home.scriptedAgent('late', { version: '1' });
        await loaded('1');
        await home.scriptedAgent('late', { version: '2' });
        await loaded('2');
        await home.inbox('late', 'l1', resultTask('l1', 'late and done'));
        assert.equal((await daemon.runEnded('late')).outcome, 'done');
      });
    }));

  it('an agent folder replaced under the same name is watched again: removed and made again, or a symlink swapped in one rename', () =>
    inHome(NO_SWEEP, async (home) => {
      await home.scriptedAgent('late', { version: '1' });
      await withDaemon(home, async (daemon) => {
        await daemon.waitForLog((l) => l.msg === 'file watcher ready', 'the watcher ready');
        const loaded = (version: string) => daemon.waitForLog((l) => l.msg === 'agent definition loaded' && l.agent === 'late' && l.version === version, `late's definition ${version}`);
        // rm -rf and mkdir at once: the listing of agents/ is the same before and after.
        await fs.rm(home.path('agents', 'late'), { recursive: true });
        await home.scriptedAgent('late', { version: '2' });
        await loaded('2');
        // An edit inside the new folder is seen only through that folder's own watch.
        await home.scriptedAgent('late', { version: '3' });
        await loaded('3');

        // A release-style swap: agents/late is a symlink, replaced by a rename of a new link over it.
        await fs.rm(home.path('agents', 'late'), { recursive: true });
        await home.write('releases/a/agent.json', { version: '4', command: ['node', SCRIPTED_AGENT], model: 'mock/echo' });
        await fs.symlink(home.path('releases', 'a'), home.path('agents', 'late'));
        await loaded('4');
        await home.write('releases/b/agent.json', { version: '5', command: ['node', SCRIPTED_AGENT], model: 'mock/echo' });
        await fs.symlink(home.path('releases', 'b'), home.path('agents', '.late-next'));
        await fs.rename(home.path('agents', '.late-next'), home.path('agents', 'late'));
        await loaded('5');
        await home.write('releases/b/agent.json', { version: '6', command: ['node', SCRIPTED_AGENT], model: 'mock/echo' });
        await loaded('6');
        await home.inbox('late', 'l1', resultTask('l1', 'swapped and done'));
        assert.equal((await daemon.runEnded('late')).outcome, 'done');
        assert.equal((await home.readJson<{ output: unknown }>('state/late/done/l1.json')).output, 'swapped and done');
      });
    }));
});
