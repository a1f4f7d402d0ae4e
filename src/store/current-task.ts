import { sameTask } from '../core/task-order.js';
import type { HomePaths } from './paths.js';
import { peopleFileMode, readIfExists, removeDurable, writeFileDurable } from './durable.js';
import { replaceStateJson } from './state-file.js';
import { taskFileText, writeInboxTask } from './inbox-writer.js';
import { removeCheckpoint } from './checkpoint.js';
import { quietPeriodMs } from './quiet-period.js';
import { DEFAULT_MAX_FILE_BYTES, readHomeFile } from './home-file.js';
import { removeLeftoverPromotionLinks } from './promotion-links.js';
import { generateTaskId, idFromBrokenTask, parseTask, requeueUnderFreshId, unreadable, type Task } from './tasks.js';
import { readDone, type DoneRecord } from './done-records.js';
import { deadLetterMalformed, readDeadLetterRecord, type DeadLetterRecord } from './dead-letters.js';

/**
 * current-task.json, the task an agent is on (README "Tasks"): settled on
 * claim, released when the task is done or dead-lettered. Every move is
 * ordered so that a crash between any two writes leaves the task in at least
 * one place, and `settleCurrentTask` (with store/promotion.ts `promoteNext`)
 * finishes a half-done move on the next claim, so a task is never lost and
 * never in two places.
 */

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
    await deadLetterMalformed(paths, agent, id, read.kind === 'too_big' ? read.head : null, problem, 'current', now);
    await removeDurable(file);
    return { kind: 'dead_lettered', id, problems: [problem] };
  }
  const bytes = read.bytes;
  const parsed = parseTask(bytes, () => generateTaskId(now), read.mtime);
  if (!parsed.ok) {
    const mtimeMs = read.mtime.getTime();
    if (now.getTime() - mtimeMs < quietPeriodMs()) return { kind: 'settling', untilMs: mtimeMs + quietPeriodMs() };
    const id = idFromBrokenTask(bytes) ?? generateTaskId(now);
    await deadLetterMalformed(paths, agent, id, bytes, parsed.problems.map((p) => `current-task.json: ${p}`).join('; '), 'current', now, file);
    await removeDurable(file);
    return { kind: 'dead_lettered', id, problems: parsed.problems };
  }
  const { task } = parsed;
  await removeLeftoverPromotionLinks(paths, agent);
  // A promotion links inbox/<id>.json to current-task.json, then unlinks the inbox copy.
  const inboxCopy = await readIfExists(paths.inboxTask(agent, task.id));
  if (inboxCopy !== null && inboxCopy.equals(bytes)) await removeDurable(paths.inboxTask(agent, task.id));
  const done = await readDone(paths, agent, task.id);
  const dead = await readDeadLetterRecord(paths, agent, task.id);
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
    const filledBytes = Buffer.from(taskFileText(task));
    await writeFileDurable(file, filledBytes, { mode: peopleFileMode() });
    return { kind: 'task', task, bytes: filledBytes };
  }
  return { kind: 'task', task, bytes };
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
