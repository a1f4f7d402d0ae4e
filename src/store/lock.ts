import lockfile from 'proper-lockfile';
import type { HomePaths } from './paths.js';
import { ensureDir } from './durable.js';

/** A held agent lock. `lost` aborts if the lease could not be refreshed (another daemon may take over). */
export interface AgentLock {
  release(): Promise<void>;
  lost: AbortSignal;
}

/**
 * Lock state/<agent> (proper-lockfile: a lease refreshed every stale/2, taken
 * over by another daemon once it is `staleMs` old). Returns null when another
 * process holds it.
 */
export async function tryLockAgent(paths: HomePaths, agent: string, staleMs: number): Promise<AgentLock | null> {
  const dir = paths.stateDir(agent);
  await ensureDir(dir);
  const lost = new AbortController();
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dir, {
      stale: staleMs,
      update: Math.max(1000, Math.floor(staleMs / 2)),
      retries: 0,
      realpath: false,
      // The default throws from a timer and would kill the daemon.
      onCompromised: (err) => lost.abort(err),
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return null;
    throw err;
  }
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
