import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { secretCensor } from '../security/secrets.js';
import { fsyncDir } from './durable.js';
import { pausePoint } from './test-pause.js';

/**
 * Replace a file that people also edit in place (outbox.json, README "The
 * outbox") without ever dropping their save. A lock cannot keep an editor
 * out, and a check before the rename leaves a window before it; so the file
 * being replaced is caught instead: it is hard-linked to a side name just
 * before the rename, and read back after it. A save that landed in it
 * between our read and our rename — or through a handle the editor opened
 * before the rename and wrote to after it — is in that inode, so it is seen
 * and handed back to the caller, who applies its change again on top of it.
 */
export type Replaced =
  /** The file held what we read right up to the rename: our bytes are in place. */
  | { kind: 'replaced' }
  /**
   * Someone saved meanwhile; our bytes (`ours`, as written) are in place, built on the older version:
   * apply the change again to `theirs`, and expect `ours` in the file on the next try.
   */
  | { kind: 'changed'; theirs: Buffer; ours: Buffer }
  /** Someone saved bytes that `accepts` refused (half-written, broken): their file is put back as it was, ours is not written. */
  | { kind: 'restored'; theirs: Buffer };

/**
 * Write `next` over `file` (temp file, fsync, rename, folder fsync), and
 * compare the replaced version with `expected` (what the caller read; null
 * when there was no file).
 */
export async function replaceGuarded(file: string, expected: Buffer | null, next: string, mode: number, accepts: (theirs: Buffer) => boolean): Promise<Replaced> {
  const dir = path.dirname(file);
  const tag = randomBytes(4).toString('hex');
  const temp = path.join(dir, `.${path.basename(file)}.${tag}.tmp`);
  const caught = path.join(dir, `.${path.basename(file)}.${tag}.replaced`);
  const ours = Buffer.from(secretCensor.maskData(next));
  await writeTemp(temp, ours, mode);
  let linked = false;
  try {
    await pausePoint('outbox-before-rename');
    linked = await linkIfExists(file, caught);
    await fs.rename(temp, file);
  } catch (err) {
    await fs.rm(temp, { force: true });
    if (linked) await fs.rm(caught, { force: true });
    throw err;
  }
  await fsyncDir(dir);
  await pausePoint('outbox-after-rename');
  if (!linked) return { kind: 'replaced' }; // no file to catch (deleted meanwhile), or no hard links here
  const theirs = await fs.readFile(caught);
  if (expected !== null && theirs.equals(expected)) {
    await fs.rm(caught, { force: true });
    return { kind: 'replaced' };
  }
  if (!accepts(theirs)) {
    // Their inode goes back under the name: an editor still writing to it goes on writing to the real file.
    await fs.rename(caught, file);
    await fsyncDir(dir);
    return { kind: 'restored', theirs };
  }
  await fs.rm(caught, { force: true });
  return { kind: 'changed', theirs, ours };
}

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

async function linkIfExists(from: string, to: string): Promise<boolean> {
  try {
    await fs.link(from, to);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    // A file system without hard links (some network mounts) keeps the plain rename.
    if (code === 'ENOENT' || NO_LINKS.has(code)) return false;
    throw err;
  }
}

const NO_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);
