import fs from 'node:fs';
import { promisify } from 'node:util';

/**
 * The fsync of a folder after a name in it was made, replaced or removed
 * (store/durable.ts fsyncDir). The folders a run writes into (state/,
 * state/<agent>, its done/, the agent's folder and inbox) are fsynced two or
 * three times per task, and each fsync opened the folder by name first: about
 * eight opens per task (README.md, Benchmark: P3). The last few folders are
 * held open instead, and fsynced through the handle they already have.
 *
 * A held folder that was removed since (rm -r, a test's fresh home at the same
 * path) has no links left: fstat says so, and the folder is opened again by
 * name, so the fsync reaches the folder the name now is. A folder moved away
 * whole while the daemon writes into it (`mv state state.old`) is not noticed:
 * its handle fsyncs the moved folder, and the new one's names reach the disk
 * with the file system's next commit rather than at once.
 */

const open = promisify(fs.open);
const close = promisify(fs.close);
const fsync = promisify(fs.fsync);
const fstat = promisify(fs.fstat);

/** How many folders are held open: the few a run writes into, for the runs in flight. */
const HELD_FOLDERS = 64;

/** Folder path → its handle, oldest use first. A handle in use is out of the map until its fsync is done. */
const held = new Map<string, number>();

export async function syncFolder(dir: string): Promise<void> {
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
  const fresh = await open(dir, 'r');
  try {
    await fsync(fresh);
  } catch (err) {
    await close(fresh).catch(() => undefined);
    throw err;
  }
  keep(dir, fresh);
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
