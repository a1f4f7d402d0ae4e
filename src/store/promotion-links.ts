import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from './paths.js';
import { listDir, removeDurable } from './durable.js';

/**
 * A promotion links inbox/<file>.json to current-task.json, then unlinks the
 * inbox name. The inbox file's name need not be the task's id (inbox/order.json
 * may hold id o-77), so after a crash between the two steps the leftover is
 * found by its inode, not its name: any inbox entry that is the very same file
 * as current-task.json is that half-done promotion and is unlinked. Only
 * looked for when the file has more than one link, so the common case costs
 * one stat.
 */
export async function removeLeftoverPromotionLinks(paths: HomePaths, agent: string): Promise<string[]> {
  const current = await fs.lstat(paths.currentTask(agent)).catch(() => null);
  if (!current || !current.isFile() || current.nlink < 2) return [];
  const dir = paths.inboxDir(agent);
  const removed: string[] = [];
  for (const name of await listDir(dir)) {
    const file = path.join(dir, name);
    const stat = await fs.lstat(file).catch(() => null);
    if (stat && isSameFile(stat, current)) {
      await removeDurable(file);
      removed.push(name);
    }
  }
  return removed;
}

/** Pure: two stats of one file (same device and inode). */
export function isSameFile(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}
