import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import { describe, it } from 'node:test';
import { agentsToLoadAgain, CLOCK_TICK_MS, definitionIdentity, type DefinitionNow } from '../src/daemon/start-catch-up.js';
import type { TestHome } from './helpers/home.js';
import type { DaemonProcess } from './helpers/process.js';
import { FAST_CONFIG, inHome } from './helpers/support.js';

/**
 * 'daemon started' is logged before the watcher's first scan (README.md, The
 * home folder): a file written between the two raises no event. The daemon's
 * test pause point `watcher-before-start` holds it after 'daemon started' and
 * its first inbox sweep, before the watcher starts, so what a test writes
 * there is already on disk when chokidar scans: only the look the daemon takes
 * once the watcher is ready can find it. The periodic sweep is set to a day,
 * so it cannot be what finds it.
 */

const TASK = { goal: 'say hello', input: { script: [{ result: 'ok' }] } };

/** Resolves once `check()` holds, looking again every few milliseconds (a condition, not a timed wait). */
async function until(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Starts the daemon, runs `inWindow` while it is held between 'daemon started' and its watcher, and lets it go on. */
async function writeInWindow(home: TestHome, inWindow: () => Promise<void>): Promise<DaemonProcess> {
  const pause = home.path('pause');
  const daemon = home.startDaemon({ AGENTD_TEST_PAUSE_AT: 'watcher-before-start', AGENTD_TEST_PAUSE_FILE: pause });
  await daemon.started();
  await until(() => existsSync(pause), 'the daemon to hold before its watcher starts');
  assert.equal(daemon.logs.filter((l) => l.msg === 'file watcher ready').length, 0);
  await inWindow();
  await fs.rm(pause);
  await daemon.waitForLog((l) => l.msg === 'file watcher ready', 'file watcher ready');
  return daemon;
}

describe("between 'daemon started' and the watcher being ready", () => {
  it('a task, a new agent folder with its task, an edited definition and a bad one written then are all seen without the sweep', async () => {
    await inHome(`${FAST_CONFIG}sweep_interval: 24h\n`, async (home) => {
      await home.scriptedAgent('a');
      await home.scriptedAgent('edited', { version: '1' });
      const daemon = await writeInWindow(home, async () => {
        await home.inbox('a', 't1', TASK);
        await home.scriptedAgent('b');
        await home.inbox('b', 't2', TASK);
        await home.scriptedAgent('edited', { version: '2' });
        await home.scriptedAgent('bad', { budget: { max_stepz: 3 } });
      });
      assert.equal((await daemon.runEnded('a')).outcome, 'done');
      assert.equal((await daemon.runEnded('b')).outcome, 'done');
      await daemon.waitForLog((l) => l.msg === 'agent definition loaded' && l.agent === 'edited' && l.version === '2', 'the edited definition');
      const rejected = await daemon.waitForLog((l) => l.msg === 'agent definition rejected' && l.agent === 'bad', 'the bad definition');
      assert.match(String(rejected.problem), /agents\/bad\/agent\.json: budget\.max_stepz is not a known key/);
      assert.equal((await home.readJson<{ status: string }>('state/a/done/t1.json')).status, 'done');
      assert.equal((await home.readJson<{ status: string }>('state/b/done/t2.json')).status, 'done');
      // Once ready, the watcher itself sees a new task; each task ran once.
      await home.inbox('a', 't3', TASK);
      assert.equal((await daemon.runEnded('a', 2)).task_id, 't3');
      assert.equal((await home.readLines('state/a/history.jsonl')).length, 2);
      assert.equal((await home.readLines('state/b/history.jsonl')).length, 1);
      assert.equal(daemon.logs.filter((l) => l.msg === 'run started').length, 3, 'no task ran twice');
      await daemon.stop();
    });
  });

  it('agentd.yaml changed in the window is read again', async () => {
    await inHome(`${FAST_CONFIG}sweep_interval: 24h\n`, async (home) => {
      await home.scriptedAgent('a');
      const daemon = await writeInWindow(home, async () => {
        await home.write('agentd.yaml', `${FAST_CONFIG}sweep_interval: 24h\nmax_parallel_runs: 3\n`);
      });
      await daemon.waitForLog((l) => l.msg === 'definitions reloaded', 'the config read again');
      await daemon.stop();
    });
  });
});

describe('which agents are loaded again once the watcher is ready', () => {
  const since = 1_000_000_000_000;
  const old = since - 60_000;
  const id = (agent: string, mtimeMs: number, size = 40, file = 'agent.yaml') => definitionIdentity(`agents/${agent}/${file}`, mtimeMs, size);
  const now = (agent: string, mtimeMs: number, size = 40, file = 'agent.yaml') => ({ identity: id(agent, mtimeMs, size, file), mtimeMs });

  it('a new folder, a gone one, and a definition that is another file, mtime or size than the one read; nothing else', () => {
    const read = new Map<string, string | null>([
      ['same', id('same', old)],
      ['grown', id('grown', old)],
      ['touched', id('touched', old)],
      ['renamed', id('renamed', old)],
      ['gone', id('gone', old)],
      ['emptied', id('emptied', old)],
    ]);
    const current = new Map<string, DefinitionNow>([
      ['same', now('same', old + 0.4)],
      ['grown', now('grown', old, 41)],
      ['touched', now('touched', old + 1)],
      ['renamed', now('renamed', old, 40, 'agent.json')],
      ['emptied', { identity: null, mtimeMs: null }],
      ['new', now('new', old)],
    ]);
    assert.deepEqual(agentsToLoadAgain(['emptied', 'grown', 'new', 'renamed', 'same', 'touched'], read, current, since), ['emptied', 'grown', 'new', 'renamed', 'touched', 'gone']);
  });

  it('a definition changed within a clock tick of the load is loaded again even when it looks the same (a second write in the same tick keeps the mtime)', () => {
    const at = since - CLOCK_TICK_MS;
    assert.deepEqual(agentsToLoadAgain(['a'], new Map([['a', id('a', at)]]), new Map([['a', now('a', at)]]), since), ['a']);
    assert.deepEqual(agentsToLoadAgain(['a'], new Map([['a', id('a', at - 1)]]), new Map([['a', now('a', at - 1)]]), since), []);
  });

  it('a folder that had no definition and still has none is not loaded again; one that has one now is', () => {
    const none = { identity: null, mtimeMs: null };
    assert.deepEqual(agentsToLoadAgain(['x'], new Map<string, string | null>([['x', null]]), new Map([['x', none]]), since), []);
    assert.deepEqual(agentsToLoadAgain(['x'], new Map<string, string | null>([['x', null]]), new Map([['x', now('x', old)]]), since), ['x']);
  });
});
