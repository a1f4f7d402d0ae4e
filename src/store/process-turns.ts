/**
 * One turn at a time, within this process, per key (a lock file's path).
 *
 * proper-lockfile's takeover of a stale lock (stat, rmdir, mkdir) is not
 * atomic: two waiters that both saw a killed holder's lock stale can both
 * remove it and both take it, the second removing the first's fresh folder.
 * Within one daemon that happened whenever several claims waited on a killed
 * daemon's audit lock, and two lines then chained on the same one. So a
 * process sends one waiter at a time to a lock, and only processes compete for
 * its folder (README.md, "Several daemons on one home").
 */
const turns = new Map<string, Promise<unknown>>();

export async function inTurn<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const before = turns.get(key) ?? Promise.resolve();
  const mine = before.then(fn);
  const settled = mine.catch(() => undefined);
  turns.set(key, settled);
  try {
    return await mine;
  } finally {
    if (turns.get(key) === settled) turns.delete(key);
  }
}
