import path from 'node:path';
import { compareForPromotion, sameTask } from '../core/task-order.js';
import { isValidName, type HomePaths } from './paths.js';
import { linkDurable, listDir, peopleFileMode, readIfExists, removeDurable, writeFileDurable } from './durable.js';
import { taskFileText } from './inbox-writer.js';
import { quietPeriodMs } from './quiet-period.js';
import { compareKeys, isTaskFileName, nextByKey, type InboxIndex, type InboxKey } from './inbox-index.js';
import { plainBelowHome } from './plain-path.js';
import { DEFAULT_MAX_FILE_BYTES, escapesHome, readHomeFile } from './home-file.js';
import { crashPoint } from './crash-point.js';
import { sharedInboxProblem } from './shared-folders.js';
import { generateTaskId, parseTask, requeueUnderFreshId, unreadable, type Task } from './tasks.js';
import { deadLetterMalformed, readDeadLetter } from './dead-letters.js';

/**
 * Promotion (README "Tasks"): the next inbox task becomes current-task.json,
 * by priority then age (core/task-order.ts), and malformed inbox files go to
 * dead-letter on the way. store/current-task.ts finishes a promotion a crash
 * cut short.
 */

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
  const names = (await listDir(dir)).filter(isTaskFileName);
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
    await deadLetterMalformed(paths, agent, id, read.kind === 'too_big' ? read.head : null, `inbox/${name} ${unreadable(read, maxBytes)}`, 'inbox', now);
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
    await deadLetterMalformed(paths, agent, id, bytes, parsed.problems.map((p) => `inbox/${name}: ${p}`).join('; '), 'inbox', now, file);
    await removeDurable(file);
    seen.deadLettered.push(id);
    return null;
  }
  return { task: parsed.task, file, filled: parsed.filled, bytes };
}

function promotedBytes(candidate: InboxCandidate): Buffer {
  return candidate.filled ? Buffer.from(taskFileText(candidate.task)) : candidate.bytes;
}

/**
 * Move one candidate to current-task.json. 'requeued': its id was taken (done
 * or dead-lettered), it went back under a fresh id; 'taken': a
 * current-task.json appeared meanwhile and is never overwritten.
 */
async function tryPromote(paths: HomePaths, agent: string, candidate: InboxCandidate): Promise<'promoted' | 'requeued' | 'taken'> {
  const { task } = candidate;
  const original = candidate.bytes;
  // The record with a malformed file's raw as the kept file is now (what its writer added after the dead letter):
  // that is what `dlq retry` puts back (store/dead-letters.ts retryDeadLetter).
  const dead = await readDeadLetter(paths, agent, task.id);
  // The same task beside its dead letter is a `dlq retry` that crashed, or has not yet got to, removing the record.
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
