import { closeSync, constants, fstatSync, openSync, readSync, readlinkSync, realpathSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { HomePaths } from './paths.js';
import { plainBelowHome } from './plain-path.js';
import { inlineOr } from './inline-calls.js';

/**
 * Reading a file people control without letting it reach outside the home or
 * exhaust memory: a symlink that resolves outside the home is refused, a
 * file over the size cap is never read whole, and something that is not a
 * regular file (a FIFO that would block, a device) is refused.
 */

/** Largest task file or definition read by default (`max_file_bytes` in agentd.yaml). */
export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

/** How much of a refused oversized file is kept (a dead letter's `raw`). */
export const RAW_HEAD_BYTES = 4096;

export type HomeFile =
  | { kind: 'missing' }
  | { kind: 'ok'; bytes: Buffer; mtime: Date }
  | { kind: 'too_big'; size: number; head: Buffer; mtime: Date }
  /** Outside the home, or not a regular file: not read at all. */
  | { kind: 'refused'; problem: string };

const realRoots = new WeakMap<HomePaths, string>();

/** The home's own real path (the home itself may sit behind a symlink, like /tmp on macOS): one realpath per home. */
function realRoot(paths: HomePaths): string {
  let root = realRoots.get(paths);
  if (root === undefined) {
    try {
      root = realpathSync(paths.root);
    } catch {
      root = paths.root;
    }
    realRoots.set(paths, root);
  }
  return root;
}

/** True when the real path `real` is the home or inside it. */
function insideRoot(root: string, real: string): boolean {
  const rel = path.relative(root, real);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * Null when `p` (following every symlink on the way) stays inside the home or
 * does not exist; otherwise a sentence saying where it leads.
 */
export async function escapesHome(paths: HomePaths, p: string): Promise<string | null> {
  if (await plainBelowHome(paths, p)) return null; // no link below the home: nothing to resolve
  // A path that does not exist yet escapes when the deepest part that does exist leads outside.
  let probe = path.resolve(p);
  let rest = '';
  let real: string;
  for (;;) {
    try {
      real = path.join(await fs.realpath(probe), rest);
      break;
    } catch {
      const parent = path.dirname(probe);
      if (parent === probe) return null;
      rest = rest ? path.join(path.basename(probe), rest) : path.basename(probe);
      probe = parent;
    }
  }
  return insideRoot(realRoot(paths), real) ? null : `is a symlink that resolves outside the home (to ${real}); refused`;
}

/**
 * Read `file` (inside the home) with the checks above. A file larger than
 * `maxBytes` yields its first RAW_HEAD_BYTES only.
 */
export function readHomeFile(paths: HomePaths, file: string, maxBytes: number): Promise<HomeFile> {
  return inlineOr(() => readHomeFileSync(paths, file, maxBytes), () => readHomeFilePooled(paths, file, maxBytes)); // store/inline-calls.ts
}

async function readHomeFilePooled(paths: HomePaths, file: string, maxBytes: number): Promise<HomeFile> {
  let handle: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer.
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      // A dangling symlink is "missing" only when it is not a link out of the home.
      return { kind: 'missing' };
    }
    if (code === 'ELOOP') return { kind: 'refused', problem: 'is a symlink loop; refused' };
    throw err;
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return { kind: 'refused', problem: 'is not a regular file; refused' };
    const real = await openedPath(handle, file);
    if (!insideRoot(realRoot(paths), real)) return { kind: 'refused', problem: `is a symlink that resolves outside the home (to ${real}); refused, not read` };
    if (stat.size > maxBytes) return { kind: 'too_big', size: stat.size, head: await readUpTo(handle, RAW_HEAD_BYTES), mtime: stat.mtime };
    // The file may grow after the stat: never read more than the cap plus one byte.
    const bytes = await readUpTo(handle, maxBytes + 1, stat.size);
    if (bytes.length > maxBytes) return { kind: 'too_big', size: bytes.length, head: bytes.subarray(0, RAW_HEAD_BYTES), mtime: stat.mtime };
    return { kind: 'ok', bytes, mtime: stat.mtime };
  } finally {
    await handle.close();
  }
}

/** What the open file really is: /proc/self/fd on Linux (no race with a swapped link), else realpath. */
async function openedPath(handle: fs.FileHandle, file: string): Promise<string> {
  if (process.platform === 'linux') {
    try {
      return await fs.readlink(`/proc/self/fd/${handle.fd}`);
    } catch {
      // no /proc: fall through
    }
  }
  return fs.realpath(file);
}

/**
 * `sizeHint` (the size fstat gave) sizes the first buffer: a definition or task
 * of a few hundred bytes no longer allocates 64 KB (twice, with the read that
 * finds the end), which at start-up with thousands of agents was a tenth of the
 * time, in allocation and GC (README.md, Benchmark: P4).
 */
async function readUpTo(handle: fs.FileHandle, limit: number, sizeHint = Infinity): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const expected = Math.max(1, sizeHint - total + 1); // one byte more, to find the end in the same read when nothing grew
    const buffer = Buffer.allocUnsafe(Math.min(64 * 1024, limit - total, expected));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, total);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    // The stat's size read and the read shorter than asked: the end, with no second read to find it
    // (README.md, Benchmark: P3). A short read before that size (a network filesystem's) reads on.
    if (total >= sizeHint && bytesRead < buffer.length) break;
  }
  return Buffer.concat(chunks, total);
}

/** "is 52428800 bytes, over max_file_bytes (1048576)" */
export function tooBigProblem(size: number, maxBytes: number): string {
  return `is ${size} bytes, over max_file_bytes (${maxBytes}); refused without reading it`;
}

/**
 * readHomeFile (and plain-path.ts plainBelowHomeSync) without the thread
 * pool: for the load of every definition at start, before 'daemon started',
 * when nothing else waits on the event loop, and for any read while short
 * calls run inline (store/inline-calls.ts). Each async call is a round trip
 * through libuv's thread pool; eight per agent (three lstats, open, fstat,
 * readlink, read, close) were most of start-up's CPU with thousands of agents
 * (README.md, Benchmark: P4). Same checks, same answers.
 */

/** readHomeFile, with the sync calls. */
export function readHomeFileSync(paths: HomePaths, file: string, maxBytes: number): HomeFile {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK); // a FIFO must not wait for a writer
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    if (code === 'ELOOP') return { kind: 'refused', problem: 'is a symlink loop; refused' };
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { kind: 'refused', problem: 'is not a regular file; refused' };
    const real = openedPathSync(fd, file);
    if (!insideRoot(realRoot(paths), real)) return { kind: 'refused', problem: `is a symlink that resolves outside the home (to ${real}); refused, not read` };
    if (stat.size > maxBytes) return { kind: 'too_big', size: stat.size, head: readUpToSync(fd, RAW_HEAD_BYTES, RAW_HEAD_BYTES), mtime: stat.mtime };
    const bytes = readUpToSync(fd, maxBytes + 1, stat.size);
    if (bytes.length > maxBytes) return { kind: 'too_big', size: bytes.length, head: bytes.subarray(0, RAW_HEAD_BYTES), mtime: stat.mtime };
    return { kind: 'ok', bytes, mtime: stat.mtime };
  } finally {
    closeSync(fd);
  }
}

function openedPathSync(fd: number, file: string): string {
  if (process.platform === 'linux') {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // no /proc: fall through
    }
  }
  return realpathSync(file);
}

function readUpToSync(fd: number, limit: number, sizeHint: number): Buffer {
  const chunks: Buffer[] = [];
  let total = 0;
  while (total < limit) {
    const buffer = Buffer.allocUnsafe(Math.min(64 * 1024, limit - total, Math.max(1, sizeHint - total + 1)));
    const bytesRead = readSync(fd, buffer, 0, buffer.length, total);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    if (total >= sizeHint && bytesRead < buffer.length) break; // the end, as readUpTo finds it
  }
  return Buffer.concat(chunks, total);
}
