import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import type { HomePaths } from '../store/paths.js';
import { appendThrough, ensureDir, openForAppend, readIfExists, writeFileDurable, type AppendedAt } from '../store/durable.js';
import { canonicalJson } from '../store/journal.js';
import { inTurn } from '../store/process-turns.js';

/**
 * state/audit.jsonl: a hash-chained record of every decision (claims,
 * escalations, resolutions, approvals, side-effecting tool calls, dead
 * letters). Each line carries the hash of the line before it, and
 * state/audit.head.jsonl the hash of the last one, so a changed, removed or
 * reordered line — even the last — is found by `agentd audit verify`.
 */

export type AuditEvent = 'claim' | 'escalation' | 'resolution' | 'approval' | 'tool_call' | 'dead_letter' | 'done' | 'cancel';

export interface AuditEntry {
  event: AuditEvent;
  agent: string;
  task_id?: string | null;
  run_id?: string | null;
  by?: string;
  details?: unknown;
}

export interface AuditLine extends AuditEntry {
  v: 1;
  seq: number;
  at: string;
  prev: string;
  hash: string;
}

const GENESIS = '0'.repeat(64);

export function hashLine(line: Omit<AuditLine, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(line)).digest('hex');
}

export interface Head {
  seq: number;
  hash: string;
}

/**
 * The head is appended, not replaced: after each audit line, one line with its
 * seq and hash goes to state/audit.head.jsonl and is fdatasynced, and the last
 * whole line there is the head. Replacing a head file (write-file-atomic's
 * temp file, fsync, rename and the folder's fsync) took about eleven
 * file-name calls and two syncs per audit line, two lines per task (README.md,
 * Benchmark: P3); an append takes one open and one fdatasync. A power cut can
 * tear only the line being written, which readers skip: the head is then one
 * line behind, as after a kill between an audit line and its head line, and
 * readHead follows such lines as before. Once the log passes HEAD_LOG_COMPACT_BYTES it is
 * replaced (write-file-atomic) by its last line. Every write to it is under
 * the audit lock.
 */
const HEAD_LOG_COMPACT_BYTES = 64 * 1024;

/** Homes whose head file from before the head log this process has removed (once per home). */
const legacyHeadRemoved = new Set<string>();

/**
 * Append the head line. `held`: the head log as this process's last head line
 * left it, given only while nobody has appended to the audit file since (so
 * nobody wrote the log either, and it ends with that whole line); it is used
 * while it is still the log: removed or replaced by hand (nlink 0), it is let
 * go and the log opened by name again, so the head is never written where
 * nobody reads it. Returns the handle to keep for the next line, or null once
 * the log was compacted into a new file.
 */
async function appendHeadLine(paths: HomePaths, head: Head, held: fs.FileHandle | null): Promise<fs.FileHandle | null> {
  const log = paths.auditHeadLog();
  const line = JSON.stringify({ seq: head.seq, hash: head.hash });
  const before = held ? await held.stat().catch(() => null) : null;
  const stillLog = before !== null && before.nlink > 0;
  if (held && !stillLog) await held.close().catch(() => undefined);
  let handle: fs.FileHandle | null = stillLog ? held : await openForAppend(log);
  try {
    // The size, for the compaction: from the stat just made, or one more after the append.
    const at = await appendThrough(handle!, line, { identify: !stillLog, whole: stillLog });
    const size = stillLog ? before.size + Buffer.byteLength(line) + 1 : at!.size;
    if (size > HEAD_LOG_COMPACT_BYTES) {
      await handle!.close();
      handle = null;
      await writeFileDurable(log, line + '\n');
    }
    // A head file left from before the head log would be read again if the log were removed, and a
    // stale head there would fork the chain; with the log written, it goes.
    if (!legacyHeadRemoved.has(paths.root)) {
      await fs.rm(paths.auditHead(), { force: true });
      legacyHeadRemoved.add(paths.root);
    }
  } catch (err) {
    await handle?.close().catch(() => undefined);
    throw err;
  }
  return handle;
}

/**
 * The audit lock, shared by every daemon and CLI on this home. It is held for
 * milliseconds, but a holder on a loaded machine can stall for seconds between
 * reading the head and appending (a slow fsync, a starved event loop) without
 * refreshing the lock. Taking over a lock 2 s old (proper-lockfile's minimum)
 * then let two writers chain on the same line, which `audit verify` rightly
 * calls broken. The outbox lock's 10 s holds here too; a lock left by a killed
 * process costs the next writer at most that long, and the retries outlast it.
 */
const AUDIT_LOCK_STALE_MS = 10_000;

/** Run `fn` holding the audit lock. */
export async function withAuditLock<T>(paths: HomePaths, fn: () => Promise<T>): Promise<T> {
  const file = paths.audit();
  return inTurn(file, () => holdingAuditLock(file, fn)); // one waiter per process (store/process-turns.ts)
}

async function holdingAuditLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = (patient: boolean) =>
    lockfile.lock(path.dirname(file), {
      lockfilePath: `${file}.lock`,
      stale: AUDIT_LOCK_STALE_MS,
      retries: patient ? { retries: 400, minTimeout: 5, maxTimeout: 50 } : 0, // up to ~20 s: longer than the stale time
      realpath: false,
      onCompromised: () => undefined,
    });
  // One quick try first: proper-lockfile retries every error, so a missing state/ would cost the whole
  // patience before it is made. state/ is made when the lock finds it missing, not checked before every
  // entry (README.md, Benchmark: P3); only a lock held by another writer is waited for.
  const release = await lock(false).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') await ensureDir(path.dirname(file));
    else if (err.code !== 'ELOCKED') throw err;
    return lock(true);
  });
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

/** Append one entry to the audit trail. */
export async function appendAudit(paths: HomePaths, entry: AuditEntry, now: Date): Promise<AuditLine> {
  return withAuditLock(paths, async () => appendAfter(paths, await headUnderLock(paths), entry, now));
}

/**
 * The line this process appended last, per audit file, and the file as that
 * append left it (device, inode, size, mtime). Every writer appends under the
 * audit lock, and writes the head only after its line: while the file is
 * still exactly that, nobody has appended since and the head is this line, so
 * the next append chains on it without reading the head file and the file's
 * tail (two opens, reads and closes per entry; README.md, Benchmark: P3). One
 * stat tells, as the lease check's stat of the lock folder does (a shared home
 * is mounted without attribute caching). Anything else (another process
 * appended; the file was cut, emptied or replaced) and the head is read as
 * before.
 *
 * That append's handle stays open: while the stat finds the file as it left
 * it, the next line goes through it, with no open and no torn-tail check (it
 * ends with this process's own whole line), where each entry opened the file
 * by name (README.md, Benchmark: P3). Otherwise it is closed and the file
 * opened again by name.
 */
interface Appended {
  head: Head;
  at: AppendedAt;
  handle: fs.FileHandle;
  /** The head log, as this append's head line left it (appendHeadLine); null after a compaction. */
  headLog: fs.FileHandle | null;
  /** Set by headUnderLock, under the lock: the file is still as this append left it. */
  unchanged: boolean;
}

const lastAppended = new Map<string, Appended>();

/** Where the next line chains on; only under the audit lock. */
async function headUnderLock(paths: HomePaths): Promise<Head> {
  const mine = lastAppended.get(paths.audit());
  if (mine) {
    const now = await fs.stat(paths.audit()).catch(() => null);
    mine.unchanged = now !== null && now.dev === mine.at.dev && now.ino === mine.at.ino && now.size === mine.at.size && now.mtimeMs === mine.at.mtimeMs;
    if (mine.unchanged) return mine.head;
  }
  return readHead(paths);
}

/** Append one entry after `head`. Only under the audit lock, with `head` read under it. */
export async function appendAfter(paths: HomePaths, head: Head, entry: AuditEntry, now: Date): Promise<AuditLine> {
  const body: Omit<AuditLine, 'hash'> = { v: 1, seq: head.seq + 1, at: now.toISOString(), ...entry, prev: head.hash };
  const line: AuditLine = { ...body, hash: hashLine(body) };
  const file = paths.audit();
  const mine = lastAppended.get(file);
  lastAppended.delete(file);
  const held = mine?.unchanged && mine.head.seq === head.seq && mine.head.hash === head.hash ? mine.handle : null;
  if (mine && !held) {
    await mine.handle.close().catch(() => undefined);
    await mine.headLog?.close().catch(() => undefined);
  }
  let headLog = held ? mine!.headLog : null;
  const handle = held ?? (await openForAppend(file));
  try {
    const at = await appendThrough(handle, JSON.stringify(line), { identify: true, whole: held !== null });
    const given = headLog;
    headLog = null; // appendHeadLine closes it if it fails
    const kept = await appendHeadLine(paths, { seq: line.seq, hash: line.hash }, given);
    lastAppended.set(file, { head: { seq: line.seq, hash: line.hash }, at: at!, handle, headLog: kept, unchanged: false });
  } catch (err) {
    await handle.close().catch(() => undefined);
    await headLog?.close().catch(() => undefined);
    throw err;
  }
  return line;
}

/**
 * Where the next line chains on. The head log's last line is the authority: the
 * file's own lines are trusted only as far as they chain on from the head —
 * lines written after it whose head update a crash cut off (a daemon killed
 * between the append and the head write, perhaps twice in a row). A file cut
 * short or emptied is chained on from the head, so the gap stays visible to
 * `agentd audit verify` after any number of further appends.
 */
export async function readHead(paths: HomePaths): Promise<Head> {
  const head = await readHeadFile(paths);
  // The lines after the head are almost always none or a few: a short window that holds the head's
  // own line holds them all. Only when it does not is the long one read (README.md, Benchmark: P3).
  const near = await tailLines(paths.audit(), SHORT_TAIL_BYTES);
  if (near.whole || (head !== null && near.lines.some((l) => l.seq === head.seq && l.hash === head.hash))) return chainHead(head, near.lines);
  return chainHead(head, (await tailLines(paths.audit(), LONG_TAIL_BYTES)).lines);
}

/** The window read first for the head's line and what follows it. */
const SHORT_TAIL_BYTES = 8 * 1024;
/** The window read when the head's line is not in the short one. */
const LONG_TAIL_BYTES = 256 * 1024;

type Chained = Pick<AuditLine, 'seq' | 'hash' | 'prev'>;

/** Pure: the head to append after, from the head file and the file's last lines (oldest first). */
export function chainHead(head: Head | null, tail: Chained[]): Head {
  const last = tail.at(-1);
  if (head === null) return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS }; // no head yet: a home older than the head file
  let at = head;
  for (const line of tail) {
    if (line.seq === at.seq + 1 && line.prev === at.hash) at = { seq: line.seq, hash: line.hash }; // appended after the head, head never updated
  }
  return at;
}

async function readHeadFile(paths: HomePaths): Promise<Head | null> {
  const read = await readHeadSource(paths);
  return read.kind === 'head' ? read.head : null;
}

/** What the head comes from: the head log, else the head file of an older home, else nothing. */
type HeadSource = { kind: 'head'; head: Head } | { kind: 'none' } | { kind: 'unreadable'; file: string };

async function readHeadSource(paths: HomePaths): Promise<HeadSource> {
  const log = await readTail(paths.auditHeadLog(), HEAD_TAIL_BYTES);
  if (log !== null) {
    const head = lastHead(log.text);
    return head ? { kind: 'head', head } : log.text.trim() === '' ? { kind: 'none' } : { kind: 'unreadable', file: paths.auditHeadLog() };
  }
  const bytes = await readIfExists(paths.auditHead());
  if (!bytes) return { kind: 'none' };
  const head = asHead(bytes.toString('utf8'));
  return head ? { kind: 'head', head } : { kind: 'unreadable', file: paths.auditHead() };
}

/** The window of the head log read for its last line. */
const HEAD_TAIL_BYTES = 4 * 1024;

/** Pure: the last whole head line of the head log's tail (a torn last line is skipped). */
export function lastHead(text: string): Head | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const head = asHead(lines[i]!);
    if (head) return head;
  }
  return null;
}

function asHead(text: string): Head | null {
  try {
    const value = JSON.parse(text) as Partial<Head> | null;
    return value !== null && typeof value.seq === 'number' && typeof value.hash === 'string' ? { seq: value.seq, hash: value.hash } : null;
  } catch {
    return null;
  }
}

/** The last `window` bytes of `file` as text, and whether that is the whole file; null when it cannot be opened. */
async function readTail(file: string, window: number): Promise<{ text: string; whole: boolean } | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, window);
    const buf = Buffer.alloc(length);
    await handle.read(buf, 0, length, size - length);
    return { text: buf.toString('utf8'), whole: length === size };
  } finally {
    await handle.close();
  }
}

/** The parseable lines of the file's last `window` bytes, oldest first; `whole` when that is the whole file. */
async function tailLines(file: string, window: number): Promise<{ lines: AuditLine[]; whole: boolean }> {
  const tail = await readTail(file, window);
  if (tail === null) return { lines: [], whole: true }; // no file yet
  const lines: AuditLine[] = [];
  for (const text of tail.text.split('\n')) {
    if (!text.trim()) continue;
    try {
      lines.push(JSON.parse(text) as AuditLine);
    } catch {
      // a torn tail, or the cut-off first line of the window
    }
  }
  return { lines, whole: tail.whole };
}

export type VerifyResult = { ok: true; lines: number } | { ok: false; line: number; problem: string };

/** Check the whole chain. Pure over the file's text and the head. */
export function verifyChain(text: string, head: Head | null): VerifyResult {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  let prev = GENESIS;
  let seq = 0;
  let headOnChain = head !== null && head.seq === 0 && head.hash === GENESIS;
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    let line: AuditLine;
    try {
      line = JSON.parse(lines[i]!) as AuditLine;
    } catch {
      // A torn append (a crash mid-write) was never part of the chain: the next line
      // follows the one before it. A line garbled on purpose breaks the next line's `prev`.
      continue;
    }
    const { hash, ...body } = line;
    if (line.prev !== prev) return { ok: false, line: n, problem: 'does not follow the line before it (a line was removed, inserted or reordered)' };
    if (line.seq !== seq + 1) return { ok: false, line: n, problem: `seq ${line.seq} where ${seq + 1} was expected` };
    if (hashLine(body) !== hash) return { ok: false, line: n, problem: 'its content does not match its hash (the line was changed)' };
    prev = hash;
    seq = line.seq;
    if (head && line.seq === head.seq && hash === head.hash) headOnChain = true;
  }
  // The head is written after each append, so lines past the head are appends whose head update a
  // crash cut off; a head past the end of the chain, or off it, means lines were removed or changed.
  if (head && head.seq > seq) return { ok: false, line: seq + 1, problem: `the chain ends at line ${seq} but the head says ${head.seq} (lines were removed at the end)` };
  if (head && !headOnChain) return { ok: false, line: head.seq, problem: `the head (state/audit.head.jsonl) does not match line ${head.seq} (the line or the head was changed)` };
  return { ok: true, lines: seq };
}

/** Verify under the audit lock, so that a live daemon's append is never half seen. */
export async function verifyAudit(paths: HomePaths): Promise<VerifyResult> {
  return withAuditLock(paths, async () => verifyUnlocked(paths)).catch(async (err: NodeJS.ErrnoException) => {
    // A home this user may only read (an auditor's copy, a read-only mount) is verified as it lies.
    if (err.code === 'EROFS' || err.code === 'EACCES') return verifyUnlocked(paths);
    throw err;
  });
}

async function verifyUnlocked(paths: HomePaths): Promise<VerifyResult> {
  const text = (await fs.readFile(paths.audit(), 'utf8').catch(() => '')) ?? '';
  const source = await readHeadSource(paths);
  if (source.kind === 'unreadable') return { ok: false, line: 0, problem: `${paths.relative(source.file)} holds no valid head (seq and hash)` };
  return verifyChain(text, source.kind === 'head' ? source.head : null);
}
