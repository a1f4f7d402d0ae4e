import fs from 'node:fs';
import { promisify } from 'node:util';
import { inlineOr } from './inline-calls.js';

const mkdir = promisify(fs.mkdir);
const rmdir = promisify(fs.rmdir);
const stat = promisify(fs.stat);

/**
 * The file system proper-lockfile works through (its `fs` option), with one
 * addition: a holder can let go of a lock folder without removing it.
 *
 * proper-lockfile can only release a lock by removing its folder. That is
 * wrong when the owner file names another holder (store/lock.ts): the folder
 * may be the other holder's, after a takeover. But keeping our lock would be
 * worse: its refresh timer keeps the folder fresh for as long as the daemon
 * lives, while the owner file names a holder that is not refreshing it, so no
 * daemon ever takes the agent again (two daemons that took a stale lock at the
 * same moment both abandon their runs and leave it so). Letting go stops the
 * refresh and leaves the folder: it goes stale after lock_stale, and the next
 * claim takes it over (README.md, "Several daemons on one home").
 *
 * How: the refresh first stats the folder; for a folder let go that stat
 * answers ENOENT, which proper-lockfile treats as a compromised lock: it stops
 * refreshing and forgets the lock, without touching the folder.
 */
const lettingGo = new Set<string>();

type Done = (err: NodeJS.ErrnoException | null) => void;

export const lockFs = {
  /** The lock's mkdir and rmdir, on the event loop while short calls run there (store/inline-calls.ts). */
  mkdir(dir: string, callback: Done): void {
    inlineOr(() => fs.mkdirSync(dir), () => mkdir(dir)).then(() => callback(null), callback);
  },
  rmdir(dir: string, callback: Done): void {
    inlineOr(() => fs.rmdirSync(dir), () => rmdir(dir)).then(() => callback(null), callback);
  },
  utimes: fs.utimes,
  realpath: fs.realpath,
  stat(file: string, callback: (err: NodeJS.ErrnoException | null, stats?: fs.Stats) => void): void {
    if (lettingGo.has(file)) {
      callback(Object.assign(new Error(`${file}: this holder let the lock go`), { code: 'ENOENT' }));
      return;
    }
    inlineOr(() => fs.statSync(file), () => stat(file)).then((stats) => callback(null, stats), callback);
  },
  /** proper-lockfile removes the folders of the locks it holds when the process exits; not one let go. */
  rmdirSync(file: string): void {
    if (!lettingGo.has(file)) fs.rmdirSync(file);
  },
};

/**
 * Stops refreshing the lock folder `lockDir` and leaves it in place. Only for a
 * lock whose refresh still runs: its next round ends in onCompromised, which
 * must call `lockLetGo` (else this process could never take the folder again).
 */
export function letLockGo(lockDir: string): void {
  lettingGo.add(lockDir);
}

/** The refresh of `lockDir` has stopped: it is an ordinary folder again for this process. */
export function lockLetGo(lockDir: string): void {
  lettingGo.delete(lockDir);
}
