import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { secretCensor } from '../security/secrets.js';
import { ensureDir, fsyncDir, stateFileMode } from './durable.js';

/**
 * The journal file of a run in progress, held open for the whole run: a
 * record costs one append (and one fdatasync when it must survive a crash),
 * not an open/stat/read/close around each one (README.md, Benchmark: P1).
 * The torn-tail check of appendLine (store/durable.ts) is done once, when the
 * file is opened: afterwards only this run appends to it, a whole line at a time.
 */

const write = promisify(fs.write) as (fd: number, data: string) => Promise<{ bytesWritten: number }>;
const fdatasync = promisify(fs.fdatasync);
const close = promisify(fs.close);
const open = promisify(fs.open);
const fstat = promisify(fs.fstat);
const read = promisify(fs.read);

interface OpenJournal {
  fd: number;
  /** '\n' when the file ended in a torn line: closes it off before the first record. */
  prefix: string;
}

const openJournals = new Map<string, Promise<OpenJournal>>();

async function openFile(file: string, mode: number): Promise<OpenJournal> {
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

/** True while `file` is held open by a run (appendJournal then writes through it). */
export function isJournalOpen(file: string): boolean {
  return openJournals.has(file);
}

/** Append one line to the open journal `file` (opened on first use), fdatasynced unless `sync` is false. */
export async function appendOpenJournal(file: string, line: string, sync: boolean, mode = stateFileMode()): Promise<void> {
  let opening = openJournals.get(file);
  if (!opening) {
    opening = openFile(file, mode);
    openJournals.set(file, opening);
    opening.catch(() => openJournals.delete(file));
  }
  const journal = await opening;
  const masked = secretCensor.mask(line);
  await write(journal.fd, journal.prefix + masked + '\n');
  journal.prefix = '';
  if (sync) await fdatasync(journal.fd);
}

/** The run is over: close its journal. Nothing to do when it never wrote one. */
export async function closeJournal(file: string): Promise<void> {
  const opening = openJournals.get(file);
  if (!opening) return;
  openJournals.delete(file);
  const journal = await opening.catch(() => null);
  if (journal) await close(journal.fd).catch(() => undefined);
}
