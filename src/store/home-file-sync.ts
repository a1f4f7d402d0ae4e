import { constants, fstatSync, lstatSync, openSync, closeSync, readSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { HomeFile } from './home-file.js';
import { RAW_HEAD_BYTES } from './home-file.js';
import type { HomePaths } from './paths.js';
import { missingEndsWalk, partsBelowHome } from './plain-path.js';

/**
 * plain-path.ts plainBelowHome and home-file.ts readHomeFile without the
 * thread pool, for the one moment nothing else waits on the event loop: the
 * load of every definition at start, before 'daemon started'. Each async call
 * is a round trip through libuv's thread pool; eight per agent (three lstats,
 * open, fstat, readlink, read, close) were most of start-up's CPU with
 * thousands of agents (README.md, Benchmark: P4). Same checks, same answers;
 * anything but the plain case (a link below the home) is left to the async
 * code.
 */

const realRoots = new WeakMap<HomePaths, string>();

function realRootSync(paths: HomePaths): string {
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

function insideRoot(root: string, real: string): boolean {
  const rel = path.relative(root, real);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/** plainBelowHome, with lstatSync. */
export function plainBelowHomeSync(paths: HomePaths, p: string): boolean {
  const parts = partsBelowHome(paths, p);
  if (parts === null) return false;
  for (const at of parts) {
    try {
      if (lstatSync(at).isSymbolicLink()) return false;
    } catch (err) {
      return missingEndsWalk(err);
    }
  }
  return true;
}

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
    if (!insideRoot(realRootSync(paths), real)) return { kind: 'refused', problem: `is a symlink that resolves outside the home (to ${real}); refused, not read` };
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
  }
  return Buffer.concat(chunks, total);
}
