import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { secretCensor } from '../security/secrets.js';
import { fsyncDir, writeFileDurable } from './durable.js';
import { pausePoint } from './test-pause.js';

/**
 * Replace a file that people also edit in place (outbox.json, README "The
 * outbox") without ever dropping their save. A lock cannot keep an editor
 * out, and a check before the rename leaves a window before it; so the file
 * being replaced is held open from just before the rename and read through
 * that handle after it. A save that landed in it between our read and our
 * rename, or through a handle the editor opened before the rename and wrote
 * to after it, is in that file, so it is seen and handed back to the caller,
 * who applies its change again on top of it. (Held open, not hard-linked: a
 * link changes the file's link count, and file watchers such as the
 * daemon's then lose track of the name.)
 */
export type Replaced =
  /** The file held what we read right up to the rename: our bytes are in place. */
  | { kind: 'replaced' }
  /**
   * Someone saved meanwhile; our bytes (`ours`, as written) are in place, built on the older version:
   * apply the change again to `theirs`, and expect `ours` in the file on the next try.
   */
  | { kind: 'changed'; theirs: Buffer; ours: Buffer }
  /** Someone saved bytes that `accepts` refused, and they stayed so for `settleMs`: their bytes are the file again, ours are not. */
  | { kind: 'restored'; theirs: Buffer };

/**
 * Write `next` over `file` (temp file, fsync, rename, folder fsync), and
 * compare the replaced version with `expected` (what the caller read; null
 * when there was no file). A replaced version that `accepts` refuses (an
 * editor half-way through its save) is read again until it is accepted or
 * has not changed for `settleMs` (the quiet period).
 */
export async function replaceGuarded(file: string, expected: Buffer | null, next: string, mode: number, accepts: (theirs: Buffer) => boolean, settleMs: number): Promise<Replaced> {
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const ours = Buffer.from(secretCensor.maskData(next));
  await writeTemp(temp, ours, mode);
  let replaced: fs.FileHandle | null = null;
  try {
    await pausePoint('outbox-before-rename');
    replaced = await openIfExists(file);
    await fs.rename(temp, file);
  } catch (err) {
    await replaced?.close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  try {
    await fsyncDir(dir);
    await pausePoint('outbox-after-rename');
    if (!replaced) return { kind: 'replaced' }; // no file to keep (deleted meanwhile)
    const first = await readWhole(replaced);
    if (expected !== null && first.equals(expected)) return { kind: 'replaced' };
    const theirs = await settle(replaced, first, accepts, settleMs);
    if (accepts(theirs)) return { kind: 'changed', theirs, ours };
    await writeFileDurable(file, theirs, { mode });
    return { kind: 'restored', theirs };
  } finally {
    await replaced?.close();
  }
}

/** Read `handle` again until `accepts` holds or its bytes have not changed for `quietMs`. */
async function settle(handle: fs.FileHandle, first: Buffer, accepts: (bytes: Buffer) => boolean, quietMs: number): Promise<Buffer> {
  let current = first;
  let stillSince = Date.now();
  while (!accepts(current) && Date.now() - stillSince < quietMs) {
    await new Promise((resolve) => setTimeout(resolve, SETTLE_LOOK_MS));
    const now = await readWhole(handle);
    if (!now.equals(current)) {
      current = now;
      stillSince = Date.now();
    }
  }
  return current;
}

/** How often a half-written save is looked at again, ms. */
const SETTLE_LOOK_MS = 20;

async function writeTemp(temp: string, data: Buffer, mode: number): Promise<void> {
  const handle = await fs.open(temp, 'wx', mode);
  try {
    await handle.writeFile(data);
    await handle.chmod(mode); // not subject to the umask
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(temp, { force: true });
    throw err;
  }
  await handle.close();
}

/** Opened without blocking (a FIFO in its place is refused by the caller's read, not waited on); null when there is no file. */
async function openIfExists(file: string): Promise<fs.FileHandle | null> {
  try {
    return await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** The whole file as it is now, from its start, whatever was read through the handle before. */
async function readWhole(handle: fs.FileHandle): Promise<Buffer> {
  const { size } = await handle.stat();
  const buf = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const { bytesRead } = await handle.read(buf, at, size - at, at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  return buf.subarray(0, at);
}
