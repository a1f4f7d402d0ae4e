import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The fsync of a folder after a name in it was made, replaced or removed
 * (store/durable.ts fsyncDir). The folders a run writes into (state/,
 * state/<agent>, its done/, the agent's folder and inbox) are fsynced two or
 * three times per task, and each fsync opened the folder by name first: about
 * eight opens per task (README.md, Benchmark: P3). The last few folders of
 * the daemon's own state/ are held open instead, and fsynced through the
 * handle they already have.
 *
 * Only folders under a root the daemon named (holdFoldersUnder: its home's
 * state/, which only daemons write) are held. A person's folders (an agent
 * folder, its inbox) may be swapped for new ones by a move or a symlink while
 * the daemon runs, and a held handle would then fsync the old folder: those
 * are opened by name each time. A held folder that was removed since (rm -r,
 * a test's fresh home at the same path) has no links left: fstat says so, and
 * the folder is opened again by name, so the fsync reaches the folder the name
 * now is. Moving state/ itself away under a running daemon is not noticed
 * (README.md, The home folder).
 */

const open = promisify(fs.open);
const close = promisify(fs.close);
const fsync = promisify(fs.fsync);
const fstat = promisify(fs.fstat);

/** How many folders are held open: the few a run writes into, for the runs in flight. */
const HELD_FOLDERS = 64;

/** Folder path → its handle, oldest use first. A handle in use is out of the map until its fsync is done. */
const held = new Map<string, number>();
/** Folders under these (and these themselves) may be held. */
const holdableRoots = new Set<string>();

/** Let the folders under `root` (an absolute path: a home's state/) be held open between fsyncs. */
export function holdFoldersUnder(root: string): void {
  holdableRoots.add(path.resolve(root));
}

function holdable(dir: string): boolean {
  for (const root of holdableRoots) if (dir === root || dir.startsWith(root + path.sep)) return true;
  return false;
}

export async function syncFolder(dir: string): Promise<void> {
  if (!holdable(dir)) return syncByName(dir);
  const fd = held.get(dir);
  if (fd !== undefined) {
    held.delete(dir);
    if (await stillLinked(fd)) {
      await fsync(fd).catch(async (err: unknown) => {
        await close(fd).catch(() => undefined);
        throw err;
      });
      keep(dir, fd);
      return;
    }
    await close(fd).catch(() => undefined);
  }
  keep(dir, await openAndSync(dir));
}

/** syncFolder with the sync calls (store/sync-choice.ts syncedInline). */
export function syncFolderSync(dir: string): void {
  if (!holdable(dir)) return fs.closeSync(openAndSyncSync(dir));
  const fd = held.get(dir);
  if (fd !== undefined) {
    held.delete(dir);
    if (stillLinkedSync(fd)) {
      try {
        fs.fsyncSync(fd);
      } catch (err) {
        closeQuietly(fd);
        throw err;
      }
      keep(dir, fd);
      return;
    }
    closeQuietly(fd);
  }
  keep(dir, openAndSyncSync(dir));
}

function openAndSyncSync(dir: string): number {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  return fd;
}

function stillLinkedSync(fd: number): boolean {
  try {
    return fs.fstatSync(fd).nlink > 0;
  } catch {
    return false;
  }
}

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // closing is all that is left to do
  }
}

async function syncByName(dir: string): Promise<void> {
  await close(await openAndSync(dir));
}

/** Open `dir` by name and fsync it; the handle, still open. */
async function openAndSync(dir: string): Promise<number> {
  const fd = await open(dir, 'r');
  try {
    await fsync(fd);
  } catch (err) {
    await close(fd).catch(() => undefined);
    throw err;
  }
  return fd;
}

async function stillLinked(fd: number): Promise<boolean> {
  try {
    return (await fstat(fd)).nlink > 0;
  } catch {
    return false;
  }
}

/** Hold `fd` for `dir` (most recent use last), closing the oldest past the limit, or `fd` itself when another call holds one already. */
function keep(dir: string, fd: number): void {
  if (held.has(dir)) {
    void close(fd).catch(() => undefined);
    return;
  }
  held.set(dir, fd);
  if (held.size <= HELD_FOLDERS) return;
  const [oldest, oldFd] = held.entries().next().value as [string, number];
  held.delete(oldest);
  void close(oldFd).catch(() => undefined);
}

/** The handle held for `dir`, if any: for tests. */
export function heldFolderHandle(dir: string): number | undefined {
  return held.get(dir);
}
