import fs from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import type { HomePaths } from './paths.js';
import { ensureDir } from './durable.js';
import { hostId } from './host.js';

/** A held agent lock. `lost` aborts if the lease could not be refreshed (another daemon may take over). */
export interface AgentLock {
  release(): Promise<void>;
  lost: AbortSignal;
}

/** Who holds an agent's lock: lets a daemon on the same host reclaim a dead holder's lock at once. */
interface LockOwner {
  host: string;
  pid: number;
}

function ownerFile(paths: HomePaths, agent: string): string {
  return `${paths.stateDir(agent)}.owner`;
}

/**
 * Lock state/<agent> (proper-lockfile: a lease refreshed every stale/2, taken
 * over by another daemon once it is `staleMs` old). Returns null when another
 * live process holds it. A lock whose recorded holder is a dead process on
 * this host is taken at once instead of after the stale time: that is the
 * common restart after a crash.
 */
export async function tryLockAgent(paths: HomePaths, agent: string, staleMs: number): Promise<AgentLock | null> {
  const dir = paths.stateDir(agent);
  await ensureDir(dir);
  const lost = new AbortController();
  const options = {
    stale: staleMs,
    update: Math.max(1000, Math.floor(staleMs / 2)),
    retries: 0,
    realpath: false,
    // The default throws from a timer and would kill the daemon.
    onCompromised: (err: Error) => lost.abort(err),
  };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, options);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    if (!(await holderIsDeadHere(paths, agent))) return null;
    await lockfile.unlock(dir, { realpath: false }).catch(() => undefined);
    try {
      release = await lockfile.lock(dir, options);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'ELOCKED') return null; // another process was quicker
      throw again;
    }
  }
  await fs.writeFile(ownerFile(paths, agent), JSON.stringify({ host: hostId(), pid: process.pid } satisfies LockOwner));
  let released = false;
  return {
    lost: lost.signal,
    async release() {
      if (released) return;
      released = true;
      await release().catch(() => undefined); // already compromised or removed: nothing left to release
    },
  };
}

async function holderIsDeadHere(paths: HomePaths, agent: string): Promise<boolean> {
  let owner: LockOwner;
  try {
    owner = JSON.parse(await fs.readFile(ownerFile(paths, agent), 'utf8')) as LockOwner;
  } catch {
    return false; // unknown holder: wait for the lease to go stale
  }
  if (owner.host !== hostId() || owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
