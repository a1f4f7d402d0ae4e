import type { HomePaths } from './paths.js';
import { readJsonIfExists } from './durable.js';
import type { Task } from './tasks.js';

/** A finished task's record (README "Tasks"): state/<agent>/done/<id>.json, written by store/current-task.ts completeTask. */

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

export async function readDone(paths: HomePaths, agent: string, id: string): Promise<DoneRecord | null> {
  return (await readJsonIfExists(paths.done(agent, id))) as DoneRecord | null;
}
