import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { tryLockAgent } from '../src/store/lock.js';
import { HomePaths } from '../src/store/paths.js';
import { untilTrue } from './helpers/byo.js';
import { REPO_ROOT, TestHome } from './helpers/home.js';

/** A child process that takes the agent lock, says so, and holds it until killed. */
function holder(home: string) {
  const script = `
    const { tryLockAgent } = await import(${JSON.stringify(`${REPO_ROOT}dist/src/store/lock.js`)});
    const { HomePaths } = await import(${JSON.stringify(`${REPO_ROOT}dist/src/store/paths.js`)});
    const lock = await tryLockAgent(new HomePaths(${JSON.stringify(home)}), 'a', 60000);
    process.stdout.write(lock ? 'locked\\n' : 'refused\\n');
    setInterval(() => {}, 1000);`;
  return spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

describe('agent locks', () => {
  let home: TestHome;
  before(async () => {
    home = await TestHome.create();
  });
  after(async () => home.remove());

  it('a live holder keeps the lock; once it is killed, a process on the same host takes it at once, not after the stale time', async () => {
    const paths = new HomePaths(home.root);
    const child = holder(home.root);
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    assert.equal(line.toString().trim(), 'locked');
    assert.equal(await tryLockAgent(paths, 'a', 60_000), null, 'held by a live process');
    child.kill('SIGKILL');
    await once(child, 'close');
    // tryLockAgent does not wait: with a stale time of 60 s, only the dead-holder check can hand the lock over now.
    const lock = await tryLockAgent(paths, 'a', 60_000);
    assert.ok(lock, 'taken over from the dead holder');
    await lock.release();
  });

  it('a holder whose owner file names another holder lets its lock go: it leaves the folder, stops refreshing it, and the lock goes stale and is taken again', { timeout: 60_000 }, async () => {
    // Two daemons that take a stale lock at the same moment can both end up so: each finds the
    // owner file or the folder to be the other's, and both abandon their runs. Before, the one
    // whose folder it was kept refreshing it while the owner file named the other, and no daemon
    // ever took the agent again.
    const paths = new HomePaths(home.root);
    const lock = await tryLockAgent(paths, 'b', 2000);
    assert.ok(lock);
    const other = { host: 'another-host', pid: 1, generation: 41 };
    await fs.writeFile(`${paths.stateDir('b')}.owner`, JSON.stringify(other));
    assert.equal(await lock.held(), false, 'the owner file names another holder');
    await lock.release();
    await fs.stat(`${paths.stateDir('b')}.lock`); // left in place: it may be the other holder's folder
    // The refresh runs every second (proper-lockfile's least); the bounds leave room for a loaded machine.
    await untilTrue(() => lock.lost.aborted, 'the refresh of the lock let go to stop', 30_000);
    // The folder is now refreshed by nobody: it goes stale after lock_stale (2 s), then the next try takes it.
    const taken: { lock: Awaited<ReturnType<typeof tryLockAgent>> } = { lock: null };
    await untilTrue(async () => (taken.lock = await tryLockAgent(paths, 'b', 2000)) !== null, 'the lock let go to be taken again', 30_000);
    const again = taken.lock;
    assert.ok(again);
    assert.equal(await again.held(), true);
    const owner = JSON.parse(await fs.readFile(`${paths.stateDir('b')}.owner`, 'utf8')) as { generation: number };
    assert.equal(owner.generation, other.generation + 1);
    await again.release();
  });
});
