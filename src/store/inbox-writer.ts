import type { HomePaths } from './paths.js';
import { createFileExclusive, peopleFileMode, writeFileDurable } from './durable.js';

/**
 * The one writer of task files into an agent's folder (README "The home
 * folder", "Permissions"): `agentd submit`, the schedules, `agentd init`,
 * `agentd dlq retry` and the eval's case homes all write through here, so a
 * task file has the same bytes layout and the same mode (`file_mode.outbox`,
 * a person in the daemon's group may edit it) whoever wrote it.
 */

/** The mode of every task file written into agents/: `file_mode.outbox` (default 0660). */
export function taskFileMode(): number {
  return peopleFileMode();
}

/** A task object as its file holds it. */
export function taskFileText(task: object): string {
  return JSON.stringify(task, null, 2) + '\n';
}

/**
 * Write `task` (an object, or the exact bytes to keep) as agents/<agent>/inbox/<id>.json.
 * `exclusive`: create it only if no file has that name (of concurrent writers exactly one
 * wins); false when it existed. Otherwise the file is replaced atomically.
 */
export async function writeInboxTask(paths: HomePaths, agent: string, id: string, task: object | string | Buffer, options: { exclusive?: boolean } = {}): Promise<boolean> {
  const file = paths.inboxTask(agent, id);
  const data = typeof task === 'string' || Buffer.isBuffer(task) ? task : taskFileText(task);
  if (options.exclusive) return createFileExclusive(file, data, { mode: taskFileMode() });
  await writeFileDurable(file, data, { mode: taskFileMode() });
  return true;
}

/** Write `task` as agents/<agent>/current-task.json: a task handed straight to a claim (an eval case). */
export async function writeCurrentTask(paths: HomePaths, agent: string, task: object): Promise<void> {
  await writeFileDurable(paths.currentTask(agent), taskFileText(task), { mode: taskFileMode() });
}
