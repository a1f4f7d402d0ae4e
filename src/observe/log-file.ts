import fs from 'node:fs';
import path from 'node:path';
import { UsageError } from '../errors.js';

/**
 * A log file with size-based rotation, for `agentd start --log-file`: a pino
 * destination (anything with `write(line)`). When the next line would take
 * PATH past `maxBytes`, PATH.N-1 → PATH.N, …, PATH → PATH.1 and a fresh PATH
 * is opened; the oldest beyond `files` is dropped. Writes are synchronous, as
 * pino.destination's are by default: the size is exact, a line is never split
 * across two files, and nothing is lost to a buffer when the process exits.
 * A failed write never throws into the code that logged: it is reported once
 * on stderr and the line is dropped (stdout still has it).
 */

export interface LogFileOptions {
  /** The live file; rotated copies are `path.1` (newest) … `path.<files>`. */
  path: string;
  /** Rotate before a line would take the file past this many bytes. Default 10 MiB. */
  maxBytes?: number;
  /** How many rotated files to keep, at least 1. Default 5. */
  files?: number;
}

export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_FILES = 5;

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

/** `10MB`, `512KB`, `1GiB`, `65536` → bytes (K, M, G are powers of 1024). Throws UsageError. */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = UNITS[match?.[2]?.toLowerCase() ?? 'x'];
  if (!match || unit === undefined) throw new UsageError(`--log-max-size ${JSON.stringify(text)} is not a size like 10MB, 512KB or 1048576`);
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < 1024) throw new UsageError(`--log-max-size ${JSON.stringify(text)} is below the minimum of 1KB`);
  return bytes;
}

/** `--log-files`: a whole number of at least 1. Throws UsageError. */
export function parseFileCount(text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || n < 1) throw new UsageError(`--log-files ${JSON.stringify(text)} is not a whole number of at least 1`);
  return n;
}

export class RotatingLogFile {
  readonly path: string;
  readonly maxBytes: number;
  readonly files: number;
  private fd: number;
  private size: number;
  private failed = false;

  constructor(options: LogFileOptions) {
    this.path = path.resolve(options.path);
    this.maxBytes = options.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
    this.files = options.files ?? DEFAULT_LOG_FILES;
    if (!Number.isInteger(this.files) || this.files < 1) throw new UsageError(`--log-files must be a whole number of at least 1, not ${this.files}`);
    fs.mkdirSync(path.dirname(this.path), { recursive: true });
    this.fd = fs.openSync(this.path, 'a', 0o640);
    this.size = fs.fstatSync(this.fd).size;
  }

  /** pino calls this with one JSON line, newline included. */
  write(line: string): boolean {
    try {
      const bytes = Buffer.byteLength(line);
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      fs.writeSync(this.fd, line);
      this.size += bytes;
    } catch (err) {
      if (!this.failed) process.stderr.write(`agentd: cannot write the log file ${this.path}: ${(err as Error).message}; lines are missing from it (stdout has them)\n`);
      this.failed = true;
    }
    return true;
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private rotate(): void {
    fs.closeSync(this.fd);
    try {
      for (let n = this.files - 1; n >= 1; n--) renameIfExists(`${this.path}.${n}`, `${this.path}.${n + 1}`);
      renameIfExists(this.path, `${this.path}.1`);
    } finally {
      // Reopened even when a rename failed, so logging goes on (into the unrotated file).
      this.fd = fs.openSync(this.path, 'a', 0o640);
      this.size = fs.fstatSync(this.fd).size;
    }
  }
}

function renameIfExists(from: string, to: string): void {
  try {
    fs.renameSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
