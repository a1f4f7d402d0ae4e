import { createHash, randomBytes } from 'node:crypto';
import { compile } from '../schema/validate.js';
import { taskSchema } from '../schema/schemas.js';
import type { RawBudget } from '../config/daemon-config.js';
import { isValidName, type HomePaths } from './paths.js';
import { writeInboxTask } from './inbox-writer.js';
import { tooBigProblem, type HomeFile } from './home-file.js';
import { jsonTextTooDeep, tooDeepProblem } from '../security/json-depth.js';

/**
 * A task file (README "Tasks"): its shape, its parse, its id. The moves of a
 * task through its lifecycle are in their own modules: the inbox to
 * current-task.json in store/promotion.ts, current-task.json settled and
 * released in store/current-task.ts, the finished records in
 * store/done-records.ts and store/dead-letters.ts.
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

export function generateTaskId(now: Date): string {
  return `t-${now.toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(3).toString('hex')}`;
}

/** The id a malformed task file names, when it names a valid one: its dead letter is filed under it. */
export function idFromBrokenTask(bytes: Buffer): string | null {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as { id?: unknown };
    return typeof value.id === 'string' && isValidName(value.id) ? value.id : null;
  } catch {
    return null;
  }
}

/** A task whose id is taken gets a deterministic fresh id, so doing this twice writes one file. */
export async function requeueUnderFreshId(paths: HomePaths, agent: string, task: Task, bytes: Buffer): Promise<string> {
  const suffix = createHash('sha256').update(bytes).digest('hex').slice(0, 8);
  const id = `${task.id.slice(0, 100)}-r${suffix}`;
  await writeInboxTask(paths, agent, id, { ...task, id });
  return id;
}

/** Why a task file was not read: outside the home, not a file, or too big. */
export function unreadable(read: Exclude<HomeFile, { kind: 'ok' } | { kind: 'missing' }>, maxBytes: number): string {
  return read.kind === 'refused' ? read.problem : tooBigProblem(read.size, maxBytes);
}
