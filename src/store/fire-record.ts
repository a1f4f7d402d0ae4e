import fs from 'node:fs/promises';
import path from 'node:path';
import { createFileExclusive, listDir } from './durable.js';
import { hostId } from './host.js';
import type { HomePaths } from './paths.js';

/**
 * state/<agent>/fires/<task id>.json: the claim of one scheduled fire. Two
 * daemons sharing a home (README "Shared homes") both reach every due time;
 * whichever creates this file first (an exclusive create, which a network
 * filesystem honours too) writes the task, the other does nothing. Checking
 * the inbox first is not enough: the task may already have moved on to
 * current-task.json, and writing it again would run it twice.
 */

/** Records older than this are removed: no daemon still handles a due time that old. */
export const FIRE_RECORD_KEEP_MS = 7 * 24 * 60 * 60 * 1000;

/** True when this daemon claimed the fire; false when another did (or this one, before a restart). */
export async function claimFire(paths: HomePaths, agent: string, taskId: string, due: Date): Promise<boolean> {
  const record = { v: 1, task_id: taskId, due: due.toISOString(), host: hostId(), pid: process.pid };
  return createFileExclusive(paths.fireRecord(agent, taskId), JSON.stringify(record) + '\n');
}

/** Remove fire records older than FIRE_RECORD_KEEP_MS (by mtime). Best effort. */
export async function pruneFireRecords(paths: HomePaths, agent: string, nowMs: number): Promise<void> {
  const dir = paths.firesDir(agent);
  for (const name of await listDir(dir)) {
    const file = path.join(dir, name);
    const stat = await fs.stat(file).catch(() => null);
    if (stat && nowMs - stat.mtimeMs > FIRE_RECORD_KEEP_MS) await fs.unlink(file).catch(() => undefined);
  }
}
