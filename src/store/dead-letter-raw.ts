import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from './paths.js';
import { ensureDir, fsyncDir, readIfExists, removeDurable } from './durable.js';

/**
 * A malformed task file is dead-lettered by keeping the file itself, not a
 * copy: it is hard-linked to `state/dead-letter/<agent>/<id>.raw` before its
 * inbox name is removed (README "Tasks"). A writer that still holds it open
 * (a slow copy that paused past the quiet period) goes on writing into the
 * same inode, so no byte that arrives after the dead letter is lost, and
 * `dlq show` / `dlq retry` read the whole file.
 */

/**
 * Link `file` as the raw copy of dead letter `id`, replacing an older one.
 * False when the file system cannot hard-link (another device, a network
 * mount without links): the record's `raw` snapshot is then all there is.
 */
export async function keepRawFile(paths: HomePaths, agent: string, id: string, file: string): Promise<boolean> {
  const target = paths.deadLetterRaw(agent, id);
  const dir = path.dirname(target);
  await ensureDir(dir);
  // Under a temporary name first: link() never replaces, rename() does, atomically.
  const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.link(file, temp);
  } catch (err) {
    if (LINK_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) return false;
    throw err;
  }
  await fs.rename(temp, target);
  await fsyncDir(dir);
  return true;
}

/** Errors that say this file system (or this pair of folders) cannot hard-link. */
const LINK_UNSUPPORTED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK', 'ENOSYS']);

/** The raw file's bytes as they are now (all a late writer added), or null when there is none. */
export async function readRawFile(paths: HomePaths, agent: string, id: string): Promise<Buffer | null> {
  return readIfExists(paths.deadLetterRaw(agent, id));
}

export async function removeRawFile(paths: HomePaths, agent: string, id: string): Promise<void> {
  await removeDurable(paths.deadLetterRaw(agent, id));
}
