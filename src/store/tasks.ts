import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { compareForPromotion, sameTask } from '../core/task-order.js';
import { compile } from '../schema/validate.js';
import { ConfigError } from '../errors.js';
import { taskSchema } from '../schema/schemas.js';
import type { RawBudget } from '../config/daemon-config.js';
import { isReservedAgentName, isValidName, type HomePaths } from './paths.js';
import { linkDurable, listDir, peopleFileMode, readIfExists, removeDurable, writeFileDurable } from './durable.js';
import { replaceStateJson } from './state-file.js';
import { writeInboxTask } from './inbox-writer.js';
import { removeCheckpoint } from './checkpoint.js';
import { quietPeriodMs } from './quiet-period.js';
import { compareKeys, nextByKey, type InboxIndex, type InboxKey } from './inbox-index.js';
import { plainBelowHome } from './plain-path.js';
import { DEFAULT_MAX_FILE_BYTES, escapesHome, readHomeFile, tooBigProblem, type HomeFile } from './home-file.js';
import { crashPoint } from './crash-point.js';
import { sharedInboxProblem } from './shared-folders.js';
import { removeLeftoverPromotionLinks } from './promotion-links.js';
import { keepRawFile, readRawFile, removeRawFile } from './dead-letter-raw.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';

/**
 * Tasks and their lifecycle (README "Tasks"). Every move is ordered so
 * that a crash between any two writes leaves the task in at least one place,
 * and `settleCurrentTask` / `promoteNext` finish a half-done move on the next
 * claim, so a task is never lost and never in two places.
 */

export interface Task {
  id: string;
  created_at: string;
  goal: string;
  input?: unknown;
  priority?: number;
  critical?: boolean;
  budget?: RawBudget;
  metadata?: Record<string, unknown>;
}

export type TaskStatus = 'done' | 'cancelled';

/** state/<agent>/done/<id>.json */
export interface DoneRecord {
  v: 1;
  task: Task;
  status: TaskStatus;
  output: unknown;
  finished_at: string;
  runs: string[];
}

/** state/dead-letter/<agent>/<id>.json */
export interface DeadLetterRecord {
  v: 1;
  agent: string;
  task: Task | null;
  /** The original bytes of a file that was not a valid task. */
  raw?: string;
  /** `stderr_tail`: the agent's last stderr lines when it exited non-zero on its own (why it failed). */
  error: { category: string; message: string; stderr_tail?: string[] };
  attempts: number;
  runs: string[];
  source: 'inbox' | 'current';
  dead_lettered_at: string;
}

const validateTask = compile<Task>(taskSchema);

export type ParsedTask = { ok: true; task: Task; filled: boolean } | { ok: false; problems: string[] };

/** Parse a task file's bytes; fill a missing id (from `fallbackId`) and created_at (from the mtime). Pure. */
export function parseTask(bytes: Buffer, fallbackId: () => string, mtime: Date): ParsedTask {
  let value: unknown;
  const text = bytes.toString('utf8');
  if (jsonTextTooDeep(text)) return { ok: false, problems: [tooDeepProblem()] };
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, problems: [`is not valid JSON: ${(err as Error).message}`] };
  }
  if (!validateTask(value)) return { ok: false, problems: validateTask.problems(value) };
  let filled = false;
  const task: Task = { ...value };
  if (task.id === undefined) {
    task.id = fallbackId();
    filled = true;
  }
  if (task.created_at === undefined) {
    task.created_at = mtime.toISOString();
    filled = true;
  } else if (Number.isNaN(Date.parse(task.created_at))) {
    return { ok: false, problems: [`created_at ${JSON.stringify(task.created_at)} is not a valid date-time`] };
  }
  return { ok: true, task, filled };
}

export { compareForPromotion } from '../core/task-order.js';

export function generateTaskId(now: Date): string {
  return `t-${now.toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

function taskJson(task: Task): string {
  return JSON.stringify(task, null, 2) + '\n';
}

async function readJson(file: string): Promise<unknown | null> {
  const bytes = await readIfExists(file);
  if (bytes === null) return null;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
}

export type CurrentTask =
  | { kind: 'none' }
  | { kind: 'settling'; untilMs: number }
  | { kind: 'task'; task: Task; bytes: Buffer }
  | { kind: 'dead_lettered'; id: string; problems: string[] };

/**
 * Read current-task.json, settling what a crash may have left:
 * - malformed → dead-letter with its raw bytes;
 * - a copy of a task already in done/ or dead-letter/ → the move finished, remove it;
 * - a different task reusing a finished id → queued in the inbox under a fresh id;
 * - missing id/created_at → filled in and written back.
 * The caller holds the agent lock.
 */
export async function settleCurrentTask(paths: HomePaths, agent: string, now: Date, maxBytes = DEFAULT_MAX_FILE_BYTES): Promise<CurrentTask> {
  const file = paths.currentTask(agent);
  const read = await readHomeFile(paths, file, maxBytes);
  if (read.kind === 'missing') return { kind: 'none' };
  if (read.kind !== 'ok') {
    const id = generateTaskId(now);
    const problem = `current-task.json ${unreadable(read, maxBytes)}`;
    await deadLetterRaw(paths, agent, id, read.kind === 'too_big' ? read.head : null, problem, 'current', now);
    await removeDurable(file);
    return { kind: 'dead_lettered', id, problems: [problem] };
  }
  const bytes = read.bytes;
  const parsed = parseTask(bytes, () => generateTaskId(now), read.mtime);
  if (!parsed.ok) {
    const mtimeMs = read.mtime.getTime();
    if (now.getTime() - mtimeMs < quietPeriodMs()) return { kind: 'settling', untilMs: mtimeMs + quietPeriodMs() };
    const id = idFromBrokenTask(bytes) ?? generateTaskId(now);
    await deadLetterRaw(paths, agent, id, bytes, parsed.problems.map((p) => `current-task.json: ${p}`).join('; '), 'current', now, file);
    await removeDurable(file);
    return { kind: 'dead_lettered', id, problems: parsed.problems };
  }
  const { task } = parsed;
  await removeLeftoverPromotionLinks(paths, agent);
  // A promotion links inbox/<id>.json to current-task.json, then unlinks the inbox copy.
  const inboxCopy = await readIfExists(paths.inboxTask(agent, task.id));
  if (inboxCopy !== null && inboxCopy.equals(bytes)) await removeDurable(paths.inboxTask(agent, task.id));
  const done = (await readJson(paths.done(agent, task.id))) as DoneRecord | null;
  const dead = (await readJson(paths.deadLetter(agent, task.id))) as DeadLetterRecord | null;
  if ((done && sameTask(done.task, task)) || (dead && sameTask(dead.task, task))) {
    await removeDurable(file);
    await removeCheckpoint(paths, agent);
    return { kind: 'none' };
  }
  if (done) {
    await requeueUnderFreshId(paths, agent, task, bytes);
    await removeDurable(file);
    return { kind: 'none' };
  }
  if (parsed.filled) {
    const filledBytes = Buffer.from(taskJson(task));
    await writeFileDurable(file, filledBytes, { mode: peopleFileMode() });
    return { kind: 'task', task, bytes: filledBytes };
  }
  return { kind: 'task', task, bytes };
}

function idFromBrokenTask(bytes: Buffer): string | null {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as { id?: unknown };
    return typeof value.id === 'string' && isValidName(value.id) ? value.id : null;
  } catch {
    return null;
  }
}

/** A task whose id is taken gets a deterministic fresh id, so doing this twice writes one file. */
async function requeueUnderFreshId(paths: HomePaths, agent: string, task: Task, bytes: Buffer): Promise<string> {
  const suffix = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const id = `${task.id.slice(0, 100)}-r${suffix}`;
  await writeInboxTask(paths, agent, id, { ...task, id });
  return id;
}

/** Why a task file was not read: outside the home, not a file, or too big. */
function unreadable(read: Exclude<HomeFile, { kind: 'ok' } | { kind: 'missing' }>, maxBytes: number): string {
  return read.kind === 'refused' ? read.problem : tooBigProblem(read.size, maxBytes);
}

export type Promotion =
  /** `deadLettered`: malformed files met on the way, so they are reported even when a good task follows. */
  | { kind: 'promoted'; task: Task; bytes: Buffer; deadLettered: string[] }
  | { kind: 'empty' }
  /** Only malformed files that may still be being written: look again at `untilMs`. */
  | { kind: 'settling'; untilMs: number }
  | { kind: 'dead_lettered'; ids: string[] }
  /** The inbox folder itself leads outside the home: nothing in it is read, moved or removed. */
  | { kind: 'refused'; problem: string };

/**
 * Move the next inbox task to current-task.json (priority, then age). Malformed
 * files go to dead-letter. One rename makes the move atomic: the task is in the
 * inbox or current, never both. The caller holds the agent lock and has
 * checked that there is no current task.
 */
export async function promoteNext(paths: HomePaths, agent: string, now: Date, maxBytes = DEFAULT_MAX_FILE_BYTES, index?: InboxIndex): Promise<Promotion> {
  const dir = paths.inboxDir(agent);
  // No link on the way (one lstat per part, store/plain-path.ts): neither check below can find anything.
  const plain = await plainBelowHome(paths, dir);
  const escape = plain ? null : await escapesHome(paths, dir);
  if (escape) return { kind: 'refused', problem: `${paths.relative(dir)} ${escape}` };
  const shared = plain ? null : await sharedInboxProblem(paths, agent); // a link made after the definition was loaded
  if (shared) return { kind: 'refused', problem: `agents/${agent} ${shared}` };
  // The daemon keeps an index (store/inbox-index.ts): the cost no longer grows with the inbox's depth.
  if (index) return promoteIndexed(paths, agent, dir, now, maxBytes, index);
  const names = (await listDir(dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
  const candidates: InboxCandidate[] = [];
  const seen: SeenMalformed = { deadLettered: [], settleUntil: 0, settling: 0 };
  for (const name of names) {
    const read = await inspectInboxFile(paths, agent, dir, name, now, maxBytes, seen);
    if (read) candidates.push(read);
  }
  candidates.sort((a, b) => compareForPromotion(a.task, b.task));
  for (const candidate of candidates) {
    const tried = await tryPromote(paths, agent, candidate);
    if (tried === 'taken') return { kind: 'empty' };
    if (tried === 'promoted') return { kind: 'promoted', task: candidate.task, bytes: promotedBytes(candidate), deadLettered: seen.deadLettered };
  }
  return nothingPromoted(seen);
}

interface InboxCandidate {
  task: Task;
  file: string;
  filled: boolean;
  bytes: Buffer;
}

/** Malformed inbox files met during one promotion. */
interface SeenMalformed {
  deadLettered: string[];
  settleUntil: number;
  /** How many were left to settle. */
  settling: number;
}

function nothingPromoted(seen: SeenMalformed): Promotion {
  if (seen.deadLettered.length > 0) return { kind: 'dead_lettered', ids: seen.deadLettered };
  return seen.settleUntil > 0 ? { kind: 'settling', untilMs: seen.settleUntil } : { kind: 'empty' };
}

/** Read one inbox file: a candidate, or null when it is gone, dead-lettered, or may still be being written (noted in `seen`). */
async function inspectInboxFile(paths: HomePaths, agent: string, dir: string, name: string, now: Date, maxBytes: number, seen: SeenMalformed): Promise<InboxCandidate | null> {
  const file = path.join(dir, name);
  const read = await readHomeFile(paths, file, maxBytes);
  if (read.kind === 'missing') return null;
  const stem = name.slice(0, -'.json'.length);
  if (read.kind !== 'ok') {
    // Outside the home or too big: never read (whole), so no partial write can be in progress that matters.
    const id = isValidName(stem) ? stem : generateTaskId(now);
    await deadLetterRaw(paths, agent, id, read.kind === 'too_big' ? read.head : null, `inbox/${name} ${unreadable(read, maxBytes)}`, 'inbox', now);
    await removeDurable(file);
    seen.deadLettered.push(id);
    return null;
  }
  const bytes = read.bytes;
  const parsed = parseTask(bytes, () => (isValidName(stem) ? stem : generateTaskId(now)), read.mtime);
  if (!parsed.ok) {
    const mtimeMs = read.mtime.getTime();
    if (now.getTime() - mtimeMs < quietPeriodMs()) {
      seen.settleUntil = Math.max(seen.settleUntil, mtimeMs + quietPeriodMs());
      seen.settling++;
      return null;
    }
    const id = isValidName(stem) ? stem : generateTaskId(now);
    await deadLetterRaw(paths, agent, id, bytes, parsed.problems.map((p) => `inbox/${name}: ${p}`).join('; '), 'inbox', now, file);
    await removeDurable(file);
    seen.deadLettered.push(id);
    return null;
  }
  return { task: parsed.task, file, filled: parsed.filled, bytes };
}

function promotedBytes(candidate: InboxCandidate): Buffer {
  return candidate.filled ? Buffer.from(taskJson(candidate.task)) : candidate.bytes;
}

/**
 * Move one candidate to current-task.json. 'requeued': its id was taken (done
 * or dead-lettered), it went back under a fresh id; 'taken': a
 * current-task.json appeared meanwhile and is never overwritten.
 */
async function tryPromote(paths: HomePaths, agent: string, candidate: InboxCandidate): Promise<'promoted' | 'requeued' | 'taken'> {
  const { task } = candidate;
  const original = candidate.bytes;
  const dead = (await readJson(paths.deadLetter(agent, task.id))) as DeadLetterRecord | null;
  // The same task beside its dead letter is a `dlq retry` that crashed before removing the record.
  const retried = dead !== null && (sameTask(dead.task, task) || dead.raw === original.toString('utf8'));
  if (retried) await removeDurable(paths.deadLetter(agent, task.id));
  if ((dead !== null && !retried) || (await readIfExists(paths.done(agent, task.id)))) {
    await requeueUnderFreshId(paths, agent, task, original);
    await removeDurable(candidate.file);
    return 'requeued';
  }
  if (candidate.filled) await writeFileDurable(candidate.file, promotedBytes(candidate), { mode: peopleFileMode() });
  // link, not rename: a current-task.json a person wrote meanwhile is never overwritten.
  if (!(await linkDurable(candidate.file, paths.currentTask(agent)))) return 'taken';
  crashPoint('promote-linked');
  await removeDurable(candidate.file);
  return 'promoted';
}

function keyOf(task: Task): InboxKey {
  return { priority: task.priority ?? 0, createdMs: Date.parse(task.created_at), id: task.id };
}

/**
 * promoteNext through the daemon's index: read only the files it has not read
 * yet, pick the smallest key, read that one again (it may have changed or
 * gone since), and promote it when its key still holds.
 */
async function promoteIndexed(paths: HomePaths, agent: string, dir: string, now: Date, maxBytes: number, index: InboxIndex): Promise<Promotion> {
  const seen: SeenMalformed = { deadLettered: [], settleUntil: 0, settling: 0 };
  const skip = new Set<string>();
  const fresh = new Map<string, InboxCandidate>();
  for (;;) {
    const entries = await index.entries(agent, dir);
    for (const [name, key] of [...entries]) {
      if (key !== null || skip.has(name)) continue;
      const settling = seen.settling;
      const read = await inspectInboxFile(paths, agent, dir, name, now, maxBytes, seen);
      if (read) {
        entries.set(name, keyOf(read.task));
        fresh.set(name, read);
      } else if (seen.settling > settling) skip.add(name); // still being written: read again next time
      else entries.delete(name); // gone or dead-lettered
    }
    const name = nextByKey(entries, skip);
    if (name === null) return nothingPromoted(seen);
    let candidate = fresh.get(name) ?? null;
    if (!candidate) {
      // Verified on claim: the index said this one is next; the file says whether it still is.
      candidate = await inspectInboxFile(paths, agent, dir, name, now, maxBytes, seen);
      if (!candidate) {
        entries.delete(name);
        continue;
      }
      fresh.set(name, candidate);
      if (compareKeys(keyOf(candidate.task), entries.get(name)!) !== 0) {
        entries.set(name, keyOf(candidate.task));
        continue;
      }
    }
    const tried = await tryPromote(paths, agent, candidate);
    if (tried === 'taken') return { kind: 'empty' };
    entries.delete(name);
    if (tried === 'promoted') return { kind: 'promoted', task: candidate.task, bytes: promotedBytes(candidate), deadLettered: seen.deadLettered };
  }
}

async function deadLetterRaw(
  paths: HomePaths,
  agent: string,
  id: string,
  /** The file's bytes (or the head of an oversized file); null when it was not read. */
  bytes: Buffer | null,
  message: string,
  source: 'inbox' | 'current',
  now: Date,
  /** The malformed file, kept whole by a hard link (store/dead-letter-raw.ts). */
  file?: string,
): Promise<void> {
  if (file !== undefined) await keepRawFile(paths, agent, id, file);
  const record: DeadLetterRecord = {
    v: 1,
    agent,
    task: null,
    ...(bytes !== null ? { raw: bytes.toString('utf8') } : {}),
    error: { category: 'bad_input', message },
    attempts: 0,
    runs: [],
    source,
    dead_lettered_at: now.toISOString(),
  };
  await replaceStateJson(paths.deadLetter(agent, id), record);
}

/**
 * Finish the current task: done/<id>.json first, then current-task.json is
 * removed. If a person edited current-task.json during the run, the edited
 * version is queued in the inbox under a fresh id instead of being lost.
 */
export async function completeTask(paths: HomePaths, agent: string, claimed: Buffer, record: DoneRecord): Promise<void> {
  await replaceStateJson(paths.done(agent, record.task.id), record);
  await releaseCurrent(paths, agent, claimed, record.task);
}

/** Dead-letter the current task after its last failed attempt. */
export async function deadLetterTask(paths: HomePaths, agent: string, claimed: Buffer, record: DeadLetterRecord): Promise<void> {
  if (!record.task) throw new Error('deadLetterTask needs the task');
  await replaceStateJson(paths.deadLetter(agent, record.task.id), record);
  await releaseCurrent(paths, agent, claimed, record.task);
}

async function releaseCurrent(paths: HomePaths, agent: string, claimed: Buffer, task: Task): Promise<void> {
  const file = paths.currentTask(agent);
  const current = await readHomeFile(paths, file, DEFAULT_MAX_FILE_BYTES);
  const nowBytes = current.kind === 'ok' ? current.bytes : null; // a link out of the home or a huge file put there meanwhile is not requeued
  if (nowBytes !== null && !nowBytes.equals(claimed)) {
    const parsed = parseTask(nowBytes, () => task.id, new Date());
    if (parsed.ok && !sameTask(parsed.task, task)) await requeueUnderFreshId(paths, agent, parsed.task, nowBytes);
    else if (!parsed.ok) await writeInboxTask(paths, agent, `${task.id.slice(0, 100)}-edited`, nowBytes);
  }
  await removeDurable(file);
  await removeCheckpoint(paths, agent);
}

/** `agentd dlq retry`: the task goes back to the inbox first, then its record is removed. */
export async function retryDeadLetter(paths: HomePaths, agent: string, id: string): Promise<Task | null> {
  const record = await readDeadLetter(paths, agent, id);
  if (!record) return null;
  const escape = await escapesHome(paths, paths.inboxDir(agent));
  if (escape) throw new ConfigError(paths.relative(paths.inboxDir(agent)), [escape]);
  await writeInboxTask(paths, agent, id, record.task ?? record.raw ?? '');
  await removeDurable(paths.deadLetter(agent, id));
  await removeRawFile(paths, agent, id);
  return record.task;
}

/** A dead letter; a malformed file's `raw` is the kept file as it is now, with what its writer added later. */
export async function readDeadLetter(paths: HomePaths, agent: string, id: string): Promise<DeadLetterRecord | null> {
  const record = (await readJson(paths.deadLetter(agent, id))) as DeadLetterRecord | null;
  if (!record || record.task) return record;
  const raw = await readRawFile(paths, agent, id).catch(() => null); // too big or gone: the snapshot stands
  return raw === null ? record : { ...record, raw: raw.toString('utf8') };
}

export async function readDone(paths: HomePaths, agent: string, id: string): Promise<DoneRecord | null> {
  return (await readJson(paths.done(agent, id))) as DoneRecord | null;
}

/** Inbox task files waiting, without reading them: for queue depth. */
export async function inboxSize(paths: HomePaths, agent: string): Promise<number> {
  return (await listDir(paths.inboxDir(agent))).filter((n) => n.endsWith('.json') && !n.startsWith('.')).length;
}

export interface DeadLetterEntry {
  agent: string;
  id: string;
  /** Null when the record is not readable JSON. */
  record: DeadLetterRecord | null;
}

/** The agents with a dead-letter folder, sorted. */
async function deadLetterAgents(paths: HomePaths): Promise<string[]> {
  return (await listDir(paths.deadLetterRoot())).filter((n) => isValidName(n) && !isReservedAgentName(n)).sort();
}

/** The ids of one agent's dead letters, sorted, without reading them. */
async function deadLetterIds(paths: HomePaths, agent: string): Promise<string[]> {
  return (await listDir(paths.deadLetterDir(agent)))
    .map((file) => (file.endsWith('.json') ? file.slice(0, -'.json'.length) : ''))
    .filter(isValidName) // not write-file-atomic temp files and strays
    .sort();
}

/** Every dead letter (or one agent's), sorted by agent then id: for `agentd dlq`. */
export async function listDeadLetters(paths: HomePaths, agent?: string): Promise<DeadLetterEntry[]> {
  const entries: DeadLetterEntry[] = [];
  for (const name of agent !== undefined ? [agent] : await deadLetterAgents(paths)) {
    for (const id of await deadLetterIds(paths, name)) entries.push({ agent: name, id, record: await readDeadLetter(paths, name, id) });
  }
  return entries;
}

/** How many dead letters each agent has (agents with none are left out), without reading them: for `agentd status`. */
export async function countDeadLetters(paths: HomePaths): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const agent of await deadLetterAgents(paths)) {
    const n = (await deadLetterIds(paths, agent)).length;
    if (n > 0) counts[agent] = n;
  }
  return counts;
}
