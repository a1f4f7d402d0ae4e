import path from 'node:path';
import { compareForPromotion, sameTask } from '../core/task-order.js';
import type { WhileWaiting } from '../config/types.js';
import { readOutbox, type OutboxItem } from './outbox.js';
import { blocksTask } from '../core/outbox-rules.js';
import { isValidName, type HomePaths } from './paths.js';
import { createFileExclusive, listDir, readIfExists, removeDurable, writeFileDurable } from './durable.js';
import { crashPoint } from './crash-point.js';
import { parseTask, type Task } from './tasks.js';

/**
 * Parked tasks (README "Tasks", `while_waiting`): a task that waits on a person
 * moves from agents/<agent>/current-task.json to state/<agent>/waiting/<id>.json,
 * its checkpoint to waiting/<id>.checkpoint.json, so the agent goes on with its
 * inbox. Once nothing open holds it back, it comes back to current-task.json
 * ahead of every inbox task. Each move writes the new copy before it removes
 * the old one; a crash between the two leaves both, and the next claim of the
 * agent keeps exactly one (settleParkedCopy / dropParkedCopy).
 */

export function waitingDir(paths: HomePaths, agent: string): string {
  return path.join(paths.stateDir(agent), 'waiting');
}

function waitingTask(paths: HomePaths, agent: string, id: string): string {
  return path.join(waitingDir(paths, agent), `${id}.json`);
}

function waitingCheckpoint(paths: HomePaths, agent: string, id: string): string {
  return path.join(waitingDir(paths, agent), `${id}.checkpoint.json`);
}

/** The ids of the parked tasks: names of waiting/<id>.json, checkpoints and temp files left out. */
function parkedIds(names: string[]): string[] {
  return names
    .filter((n) => n.endsWith('.json') && !n.endsWith('.checkpoint.json') && !n.startsWith('.'))
    .map((n) => n.slice(0, -'.json'.length))
    .filter(isValidName);
}

/** How many tasks of the agent wait parked: for `agentd status`. */
export async function countParked(paths: HomePaths, agent: string): Promise<number> {
  return parkedIds(await listDir(waitingDir(paths, agent))).length;
}

/** Whether a task that waits on a person leaves the agent's queue. Pure. */
export function shouldPark(mode: WhileWaiting, waitsOnPerson: boolean): boolean {
  return mode === 'park' && waitsOnPerson;
}

export interface ParkedTask {
  task: Task;
  bytes: Buffer;
}

/**
 * The parked task to bring back first: of those no open outbox item holds back,
 * the first in promotion order (priority, then age). Pure.
 */
export function nextToUnpark(parked: ParkedTask[], items: OutboxItem[], blocks: (item: OutboxItem, taskId: string) => boolean): ParkedTask | null {
  const ready = parked.filter((p) => !items.some((i) => i.task_id === p.task.id && blocks(i, p.task.id)));
  ready.sort((a, b) => compareForPromotion(a.task, b.task));
  return ready[0] ?? null;
}

/**
 * Park the current task (the caller holds the agent lock): the checkpoint
 * copy first, then the task copy, then current-task.json and checkpoint.json
 * go. False when another file already holds that id in waiting/: the task
 * then stays where it is and blocks, so nothing is overwritten.
 */
export async function parkCurrent(paths: HomePaths, agent: string, task: Task, claimed: Buffer): Promise<boolean> {
  const parkedFile = waitingTask(paths, agent, task.id);
  const checkpoint = await readIfExists(paths.checkpoint(agent));
  if (checkpoint !== null && checkpointTaskId(checkpoint) === task.id) await writeFileDurable(waitingCheckpoint(paths, agent, task.id), checkpoint);
  if (!(await createFileExclusive(parkedFile, claimed))) {
    const there = await readIfExists(parkedFile);
    if (there === null || !there.equals(claimed)) return false; // a park a crash cut short left the same bytes: go on
  }
  crashPoint('park-linked');
  await removeDurable(paths.currentTask(agent));
  if (checkpoint !== null && checkpointTaskId(checkpoint) === task.id) await removeDurable(paths.checkpoint(agent));
  return true;
}

/**
 * Bring a parked task back to current-task.json: its checkpoint first, then
 * the task (exclusive: a current-task.json a person wrote meanwhile is never
 * overwritten), then the parked copies go. Null when current-task.json appeared.
 */
export async function unpark(paths: HomePaths, agent: string, parked: ParkedTask): Promise<ParkedTask | null> {
  const id = parked.task.id;
  const checkpoint = await readIfExists(waitingCheckpoint(paths, agent, id));
  if (checkpoint !== null) await writeFileDurable(paths.checkpoint(agent), checkpoint);
  if (!(await createFileExclusive(paths.currentTask(agent), parked.bytes))) return null;
  crashPoint('unpark-linked');
  await removeDurable(waitingTask(paths, agent, id));
  await removeDurable(waitingCheckpoint(paths, agent, id));
  return parked;
}

/** Every readable parked task; an unreadable one stays where it is, for a person to look at. */
export async function readParked(paths: HomePaths, agent: string): Promise<ParkedTask[]> {
  return readParkedOf(paths, agent, parkedIds(await listDir(waitingDir(paths, agent))));
}

async function readParkedOf(paths: HomePaths, agent: string, ids: string[]): Promise<ParkedTask[]> {
  const out: ParkedTask[] = [];
  for (const id of ids) {
    const bytes = await readIfExists(waitingTask(paths, agent, id));
    if (bytes === null) continue;
    const parsed = parseTask(bytes, () => id, new Date(0));
    if (parsed.ok && parsed.task.id === id) out.push({ task: parsed.task, bytes });
  }
  return out;
}

/**
 * Before the current task's checkpoint is read: when a move a crash cut short
 * left a parked copy of this very task, and checkpoint.json is not this
 * task's, the parked checkpoint is put back, so the task's attempts and state
 * are never lost. Nothing is removed here.
 */
export async function settleParkedCopy(paths: HomePaths, agent: string, task: Task, bytes: Buffer): Promise<ParkedCopy> {
  const copy = await readIfExists(waitingTask(paths, agent, task.id));
  if (copy === null) return NO_PARKED_COPY;
  const found = { kind: 'found' as const };
  if (!copy.equals(bytes)) return found;
  const current = await readIfExists(paths.checkpoint(agent));
  if (current !== null && checkpointTaskId(current) === task.id) return found;
  const parkedCheckpoint = await readIfExists(waitingCheckpoint(paths, agent, task.id));
  if (parkedCheckpoint !== null) await writeFileDurable(paths.checkpoint(agent), parkedCheckpoint);
  return found;
}

/**
 * What settleParkedCopy found under the task's id in waiting/. Only a claim,
 * holding the agent lock, writes there: `none` stays true for the rest of the
 * claim, so dropParkedCopy need not look again (README.md, Benchmark: P3).
 */
export type ParkedCopy = { kind: 'none' } | { kind: 'found' };
export const NO_PARKED_COPY: ParkedCopy = { kind: 'none' };

/** The task stays current (it runs or blocks): a parked copy of it left by a cut-short move goes. */
export async function dropParkedCopy(paths: HomePaths, agent: string, task: Task, bytes: Buffer, seen?: ParkedCopy): Promise<void> {
  if (seen?.kind === 'none') return;
  const file = waitingTask(paths, agent, task.id);
  const copy = await readIfExists(file);
  if (copy === null) return;
  const parsed = copy.equals(bytes) ? null : parseTask(copy, () => task.id, new Date(0));
  if (parsed !== null && !(parsed.ok && sameTask(parsed.task, task))) return; // another task under that id: not ours to remove
  await removeDurable(file);
  await removeDurable(waitingCheckpoint(paths, agent, task.id));
}

function checkpointTaskId(bytes: Buffer): string | null {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as { task_id?: unknown };
    return typeof value.task_id === 'string' ? value.task_id : null;
  } catch {
    return null;
  }
}

/**
 * The parked task that can go on now, moved back to current-task.json; when
 * none can (or outbox.json cannot be read: the tasks stay parked), the ids
 * waiting/ held when it was listed. Only a claim, holding the agent lock,
 * writes there, so a task of the same claim whose id is not among them has
 * no parked copy: its claim need not look again (settleParkedCopy; README.md,
 * Benchmark: P3). The caller holds the agent lock and has found no current task.
 */
export async function takeParked(paths: HomePaths, agent: string): Promise<{ kind: 'task'; task: Task; bytes: Buffer } | { kind: 'none'; ids: ReadonlySet<string> }> {
  const ids = parkedIds(await listDir(waitingDir(paths, agent)));
  const none = { kind: 'none' as const, ids: new Set(ids) };
  const parked = await readParkedOf(paths, agent, ids);
  if (parked.length === 0) return none;
  let items: OutboxItem[];
  try {
    items = (await readOutbox(paths, agent)).items;
  } catch {
    return none; // the claim reads it again and reports what is wrong with it
  }
  const next = nextToUnpark(parked, items, blocksTask);
  if (next === null) return none;
  const back = await unpark(paths, agent, next);
  return back === null ? none : { kind: 'task', task: back.task, bytes: back.bytes };
}
