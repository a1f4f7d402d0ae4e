import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import { NotRegularFileError } from '../errors.js';
import { inlineOr } from './inline-calls.js';

/**
 * Reading the daemon's own files (state/, outbox/): whole, only when regular
 * files of a sane size, opened without blocking. store/home-file.ts reads the
 * files people write, with the checks those need.
 */

/** The largest file `readIfExists` reads: far above any state file, far below what exhausts memory. */
export const MAX_READ_BYTES = 256 * 1024 * 1024;

/**
 * The file's bytes, or null when it does not exist. Opened without blocking
 * (a FIFO put in place of a file would otherwise hold a thread and the daemon
 * forever) and read only when it is a regular file of at most `maxBytes`:
 * anything else is a NotRegularFileError naming the file.
 */
export async function readIfExists(file: string, maxBytes = MAX_READ_BYTES): Promise<Buffer | null> {
  const read = await inlineOr(() => readIfExistsSync(file, maxBytes), () => readIfExistsPooled(file, maxBytes)); // store/inline-calls.ts
  return read === LARGE ? readIfExistsPooled(file, maxBytes) : read;
}

/** Files larger than this are read on the thread pool: reading one would hold the event loop for long. */
const INLINE_READ_BYTES = 256 * 1024;
const LARGE = Symbol('larger than INLINE_READ_BYTES');

async function readIfExistsPooled(file: string, maxBytes: number): Promise<Buffer | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    return await readOpened(handle, file, maxBytes);
  } finally {
    await handle.close();
  }
}

/** readIfExists with the sync calls: the same checks and answers, or LARGE for a file to read on the thread pool. */
function readIfExistsSync(file: string, maxBytes: number): Buffer | null | typeof LARGE {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const stat = fstatSync(fd);
    refuseUnreadable(stat, file, maxBytes);
    if (stat.size > INLINE_READ_BYTES) return LARGE;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const want = nextReadBytes(total, stat.size);
      const buffer = Buffer.allocUnsafe(want);
      const bytesRead = readSync(fd, buffer, 0, want, total);
      chunks.push(buffer.subarray(0, bytesRead));
      total += bytesRead;
      if (readToEndDone(file, stat.size, maxBytes, total, bytesRead, want)) return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
    }
  } finally {
    closeSync(fd);
  }
}

/** Anything but a regular file of at most `maxBytes` is a NotRegularFileError naming the file. */
function refuseUnreadable(stat: Stats, file: string, maxBytes: number): void {
  if (!stat.isFile()) throw new NotRegularFileError(file, 'is not a regular file (a FIFO, a device or a folder); refused, not read');
  if (stat.size > maxBytes) throw new NotRegularFileError(file, `is ${stat.size} bytes, over the ${maxBytes} bytes the daemon reads; refused`);
}

/** readIfExists on a handle its caller opened (with O_NONBLOCK) and keeps: the same checks, then the bytes from the start. */
export async function readOpened(handle: fs.FileHandle, file: string, maxBytes = MAX_READ_BYTES): Promise<Buffer> {
  const stat = await handle.stat();
  refuseUnreadable(stat, file, maxBytes);
  return readToEnd(handle, stat.size, maxBytes, file);
}

/**
 * The file's bytes, read from the size the stat gave: one read for a file
 * that has not grown since (handle.readFile would stat it again first: a
 * system call per read of a state file, several per task; README.md,
 * Benchmark: P3). Once the stat's size is read, a read shorter than asked is
 * the end; before that a short read (a network filesystem's) reads on.
 */
async function readToEnd(handle: fs.FileHandle, size: number, maxBytes: number, file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const want = nextReadBytes(total, size);
    const buffer = Buffer.allocUnsafe(want);
    const { bytesRead } = await handle.read(buffer, 0, want, total);
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    if (readToEndDone(file, size, maxBytes, total, bytesRead, want)) return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
  }
}

/** How much the next read asks for: up to the stat's size and one byte more, so a file that grew shows it. */
function nextReadBytes(total: number, size: number): number {
  return total <= size ? Math.min(size - total + 1, 64 * 1024 * 1024) : 64 * 1024;
}

/** Whether the read is over; a file that grew past `maxBytes` meanwhile is refused. */
function readToEndDone(file: string, size: number, maxBytes: number, total: number, bytesRead: number, want: number): boolean {
  if (total > maxBytes) throw new NotRegularFileError(file, `grew past the ${maxBytes} bytes the daemon reads while it was read; refused`);
  return bytesRead === 0 || (total >= size && bytesRead < want);
}

