import { randomBytes } from 'node:crypto';
import { accessSync, linkSync, lstatSync, readdirSync, unlinkSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { secretCensor } from '../security/secrets.js';
import { forgetOwnChange, noteOwnChange } from './own-changes.js';
import { syncFolder, syncFolderSync } from './folder-sync.js';
import { syncedInline } from './sync-choice.js';
import { inlineOr } from './inline-calls.js';
import { readIfExists } from './read-file.js';

export { MAX_READ_BYTES, readIfExists, readOpened } from './read-file.js';

/**
 * Durable file operations. Every file the daemon replaces goes through
 * `writeJsonAtomic` (write-file-atomic, as the README's design notes ask of
 * every state write); every append-only record goes through `appendLine`.
 * write-file-atomic fsyncs the temp file and renames it, but it does not fsync
 * the folder, so a power cut could forget the rename: we do that here.
 */

/** File permissions for what the daemon writes (state and outbox). */
export interface WriteOptions {
  /** The file's mode; default `file_mode.state` (0o640), see peopleFileMode() for files people edit. */
  mode?: number;
  /** appendLine: fdatasync before resolving (default true). Off only for records a crash may lose. */
  sync?: boolean;
  /** appendLine: return the file's device, inode, size and mtime after the append (one more fstat). */
  identify?: boolean;
}

let defaultMode = 0o640;
let peopleMode = 0o660;

/** Set by the daemon from its config (`file_mode.state`); tests leave the default. */
export function setDefaultFileMode(mode: number): void {
  defaultMode = mode;
}

/** Mode of the state files the daemon writes (`file_mode.state`). */
export function stateFileMode(): number {
  return defaultMode;
}

/** Set by the daemon from its config (`file_mode.outbox`). */
export function setPeopleFileMode(mode: number): void {
  peopleMode = mode;
}

/** Mode of files the daemon writes for people to edit: outbox/ and task files in agents/ (default 0o660). */
export function peopleFileMode(): number {
  return peopleMode;
}

/** A folder's mode for files of `mode`: searchable wherever they are readable (0o660 → 0o770). */
export function dirModeFor(mode: number): number {
  return (mode | ((mode & 0o444) >> 2)) & 0o777;
}

/** fsync a folder, so a name made, replaced or removed in it survives a power cut (store/folder-sync.ts). */
export function fsyncDir(dir: string): Promise<void> {
  return syncedInline(() => syncFolderSync(dir), () => syncFolder(dir)); // inline while the disk is fast (store/sync-choice.ts)
}

/** Create `dir` (and its parents) if missing; a `mode` is set on `dir` when it was created (not subject to the umask). */
export async function ensureDir(dir: string, mode?: number): Promise<void> {
  let created: string | undefined;
  try {
    created = await fs.mkdir(dir, { recursive: true, mode: 0o750 });
  } catch (err) {
    // A recursive mkdir on a read-only file system reports ENOENT; one level at a time says EROFS.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await ensureDir(path.dirname(dir));
    await fs.mkdir(dir, { mode: 0o750 }).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
    created = dir;
  }
  if (created !== undefined && mode !== undefined) await fs.chmod(dir, mode);
}

/** The last write of each file still in flight: the next one to the same file waits for it. */
const writesInFlight = new Map<string, Promise<void>>();

/**
 * Replace `file` with `data`: write-file-atomic's temp file, fsync and rename,
 * then an fsync of the folder, which write-file-atomic does not do, so a power
 * cut cannot forget the rename. Writes to one file land in the order they
 * were made: one that waits on the thread pool (or makes a missing folder)
 * is not overtaken by a later one made inline.
 */
export function writeFileDurable(file: string, data: string | Buffer, options: WriteOptions = {}): Promise<void> {
  // No secret value ever lands in a file the daemon writes (security/secrets.ts).
  const masked = secretCensor.maskData(data);
  const mode = options.mode ?? defaultMode;
  const before = writesInFlight.get(file);
  const mine = before ? before.then(() => replaceFile(file, masked, mode), () => replaceFile(file, masked, mode)) : replaceFile(file, masked, mode);
  writesInFlight.set(file, mine);
  const forget = () => {
    if (writesInFlight.get(file) === mine) writesInFlight.delete(file);
  };
  mine.then(forget, forget);
  return mine;
}

async function replaceFile(file: string, data: string | Buffer, mode: number): Promise<void> {
  const dir = path.dirname(file);
  const atomic = { fsync: true, mode };
  // write-file-atomic's sync form while the disk is fast: its dozen short calls and fsync without a
  // hand-off each (store/sync-choice.ts). A missing folder is left to the async form, which makes it.
  const inline = () => {
    try {
      writeFileAtomic.sync(file, data, atomic);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  };
  const pooled = async () => {
    try {
      await writeFileAtomic(file, data, atomic);
    } catch (err) {
      // The folder is made when the write finds it missing, not checked before every write (README.md, Benchmark: P3).
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await ensureDir(dir);
      await writeFileAtomic(file, data, atomic);
    }
    return true;
  };
  if (!(await syncedInline(inline, pooled, false))) await pooled();
  await fsyncDir(dir);
}

export async function writeJsonAtomic(file: string, value: unknown, options: WriteOptions = {}): Promise<void> {
  await writeFileDurable(file, JSON.stringify(value, null, 2) + '\n', options);
}

/**
 * Append one line and fdatasync it: the record survives a crash once this
 * resolves. A torn last line left by a crash mid-append is closed off first,
 * so it stays one unparseable line (skipped by readers) and never swallows
 * the new record.
 */
export async function appendLine(file: string, line: string, options: WriteOptions = {}): Promise<AppendedAt | null> {
  const handle = await openForAppend(file, options);
  try {
    return await appendThrough(handle, line, options);
  } finally {
    await handle.close();
  }
}

/**
 * appendLine through a handle its caller holds open (openForAppend). `whole`:
 * the caller knows the file ends with a whole line (its own last append, the
 * file unchanged since), so the torn-tail check's fstat and read are skipped.
 */
export async function appendThrough(handle: fs.FileHandle, line: string, options: WriteOptions & { whole?: boolean } = {}): Promise<AppendedAt | null> {
  const masked = secretCensor.mask(line);
  const text = masked.endsWith('\n') ? masked : masked + '\n';
  let prefix = '';
  if (!options.whole) {
    const { size } = await handle.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
  }
  await handle.appendFile(prefix + text);
  if (options.sync !== false) await handle.datasync();
  if (!options.identify) return null;
  const after = await handle.stat();
  return { dev: after.dev, ino: after.ino, size: after.size, mtimeMs: after.mtimeMs };
}

/** The file an append went to, as the append left it (appendLine's `identify`). */
export interface AppendedAt {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

export async function appendJsonLine(file: string, value: unknown, options: WriteOptions = {}): Promise<void> {
  await appendLine(file, JSON.stringify(value), options);
}

/** `file` opened for appending ('a+'); made, with its folder, when missing, and its new name made durable. */
export async function openForAppend(file: string, options: WriteOptions = {}): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'a+', options.mode ?? defaultMode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    await ensureDir(path.dirname(file));
    const handle = await fs.open(file, 'a+', options.mode ?? defaultMode);
    // A new file's name must survive a crash too.
    await fsyncDir(path.dirname(file));
    return handle;
  }
}

/** Remove a file and make the removal durable. Missing is fine. */
export async function removeDurable(file: string): Promise<void> {
  noteOwnChange(file, 'removed'); // the watcher does not poke for it (store/own-changes.ts)
  try {
    await inlineOr(() => unlinkSync(file), () => fs.unlink(file)); // store/inline-calls.ts
  } catch (err) {
    forgetOwnChange(file, 'removed');
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await fsyncDir(path.dirname(file));
}

/**
 * Hard-link `from` to `to` unless `to` exists, and make the new name durable.
 * False when `to` already exists (nothing is overwritten).
 */
export async function linkDurable(from: string, to: string): Promise<boolean> {
  // The watcher does not poke for the new name, nor for the source's link count (store/own-changes.ts).
  noteOwnChange(to, 'added');
  noteOwnChange(from, 'changed');
  try {
    await linkMakingFolder(from, to);
  } catch (err) {
    forgetOwnChange(to, 'added');
    forgetOwnChange(from, 'changed');
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  await fsyncDir(path.dirname(to));
  return true;
}

/** link(2); the target's folder is made when the link finds it missing, not checked before every link (README.md, Benchmark: P3). */
async function linkMakingFolder(from: string, to: string): Promise<void> {
  try {
    await inlineOr(() => linkSync(from, to), () => fs.link(from, to)); // store/inline-calls.ts
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // ENOENT: the target's folder, or the source, is missing
    await ensureDir(path.dirname(to));
    await fs.link(from, to); // a missing source says so again here
  }
}

/**
 * Create `file` with `data` only if no file of that name exists: the bytes go
 * to a hidden temp file (fsynced) that is then hard-linked to the name, so
 * the name appears whole or not at all, and of several concurrent creators
 * exactly one wins. False when `file` already exists.
 */
export async function createFileExclusive(file: string, data: string | Buffer, options: WriteOptions = {}): Promise<boolean> {
  const dir = path.dirname(file);
  await ensureDir(dir);
  // A dot name: inbox scans skip it, so a half-written temp file is never read as a task.
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const mode = options.mode ?? defaultMode;
    const handle = await fs.open(temp, 'wx', mode);
    try {
      await handle.chmod(mode); // the mode as configured, not as the umask left it
      await handle.writeFile(secretCensor.maskData(data));
      await handle.sync();
    } finally {
      await handle.close();
    }
    return await linkDurable(temp, file);
  } finally {
    await fs.unlink(temp).catch(() => undefined);
  }
}

/** A JSON file's value, or null when it does not exist or does not parse. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  const bytes = await readIfExists(file);
  if (bytes === null) return null;
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch {
    return null;
  }
}

export function exists(file: string): Promise<boolean> {
  return inlineOr(
    () => {
      try {
        accessSync(file);
        return true;
      } catch {
        return false;
      }
    },
    () => fs.access(file).then(() => true, () => false),
  );
}

/** The entry's lstat (a link itself, not where it leads), or null when it cannot be had: gone, or unreadable. */
export function lstatOrNull(file: string): Promise<Stats | null> {
  const inline = () => {
    try {
      return lstatSync(file);
    } catch {
      return null;
    }
  };
  return inlineOr(inline, () => fs.lstat(file).catch(() => null));
}

/** Names in a folder, or [] when it does not exist. */
export function listDir(dir: string): Promise<string[]> {
  const missing = (err: unknown): string[] => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw err;
  };
  return inlineOr(
    () => {
      try {
        return readdirSync(dir);
      } catch (err) {
        return missing(err);
      }
    },
    () => fs.readdir(dir).catch(missing),
  );
}

/**
 * Read a JSON-lines file, skipping a torn last line (a crash mid-append) and
 * reporting any other unparseable line through `onBad`.
 */
export async function readJsonLines<T>(file: string, onBad?: (lineNo: number, line: string) => void): Promise<T[]> {
  const buf = await readIfExists(file);
  return buf ? parseJsonLines<T>(buf.toString('utf8'), onBad) : [];
}

/** Pure: the JSON lines of `text`; blank lines skipped, a torn last line silently, other bad lines reported. */
export function parseJsonLines<T>(text: string, onBad?: (lineNo: number, line: string) => void): T[] {
  const lines = text.split('\n');
  const out: T[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      const isTornTail = i === lines.length - 1; // no trailing newline: the append never finished
      if (!isTornTail) onBad?.(i + 1, line);
    }
  }
  return out;
}
