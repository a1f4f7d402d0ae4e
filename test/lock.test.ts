import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { tryLockAgent } from '../src/store/lock.js';
import { HomePaths } from '../src/store/paths.js';
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
});
