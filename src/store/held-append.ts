import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { secretCensor } from '../security/secrets.js';
import { ensureDir, fsyncDir, stateFileMode } from './durable.js';
import { diskSyncs } from './sync-choice.js';

/**
 * Append-only files of a run in progress (its journal, its trace), held open
 * for the whole run: a record costs one append (and one fdatasync when it must
 * survive a crash), not an open/stat/read/close around each one (README.md,
 * Benchmark: P1). The torn-tail check of appendLine (store/durable.ts) is done
 * once, when the file is opened: afterwards only this run appends to it, a
 * whole line at a time. closeHeld when the run is over.
 */

const fdatasync = promisify(fs.fdatasync);
const close = promisify(fs.close);
const open = promisify(fs.open);
const fstat = promisify(fs.fstat);
const read = promisify(fs.read);

interface HeldFile {
  fd: number;
  /** '\n' when the file ended in a torn line: closes it off before the first record. */
  prefix: string;
}

const heldFiles = new Map<string, Promise<HeldFile>>();
/** The files of heldFiles whose opening is done: a record is written the moment it is appended. */
const openFiles = new Map<string, HeldFile>();

async function openFile(file: string, mode: number): Promise<HeldFile> {
  let fd: number;
  try {
    fd = await open(file, 'a+', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await ensureDir(path.dirname(file));
    fd = await open(file, 'a+', mode);
    await fsyncDir(path.dirname(file)); // a new file's name must survive a crash too
    return { fd, prefix: '' };
  }
  const { size } = await fstat(fd);
  if (size === 0) return { fd, prefix: '' };
  const last = Buffer.alloc(1);
  await read(fd, last, 0, 1, size - 1);
  return { fd, prefix: last[0] === 0x0a ? '' : '\n' };
}

/** True while `file` is held open by a run. */
export function isHeldOpen(file: string): boolean {
  return heldFiles.has(file);
}

/**
 * Append one line to `file`, held open from the first append on, fdatasynced
 * unless `sync` is false. Once the file is open the line is written before
 * this returns; the fdatasync is done inline too while the disk is fast
 * (store/sync-choice.ts), else on the thread pool, overlapping what the
 * caller does next.
 */
export function appendHeld(file: string, line: string, sync: boolean, mode = stateFileMode()): Promise<void> {
  const open = openFiles.get(file);
  if (open) return writeHeld(open, line, sync);
  let opening = heldFiles.get(file);
  if (!opening) {
    const started = openFile(file, mode);
    opening = started;
    heldFiles.set(file, started);
    started.then(
      (held) => {
        if (heldFiles.get(file) === started) openFiles.set(file, held);
      },
      () => heldFiles.delete(file),
    );
  }
  return opening.then((held) => writeHeld(held, line, sync));
}

function writeHeld(held: HeldFile, line: string, sync: boolean): Promise<void> {
  try {
    const masked = secretCensor.mask(line);
    // A line of a few hundred bytes into the page cache: written in place rather than through the
    // thread pool, which would add a hand-off each way to every step (the profile of P1 showed it).
    fs.writeSync(held.fd, held.prefix + masked + '\n');
    held.prefix = '';
    if (!sync) return Promise.resolve();
    const started = performance.now();
    if (diskSyncs.inline(started)) {
      fs.fdatasyncSync(held.fd);
      diskSyncs.took(performance.now() - started, true);
      return Promise.resolve();
    }
    return fdatasync(held.fd).then(() => diskSyncs.took(performance.now() - started, false));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The run is over: close the file. Nothing to do when it was never written. */
export async function closeHeld(file: string): Promise<void> {
  const opening = heldFiles.get(file);
  if (!opening) return;
  heldFiles.delete(file);
  openFiles.delete(file);
  const journal = await opening.catch(() => null);
  if (journal) await close(journal.fd).catch(() => undefined);
}
