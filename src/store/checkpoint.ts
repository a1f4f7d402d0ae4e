import type { HomePaths } from './paths.js';
import type { StoredSpend } from '../run/spend-floor.js';
import { readIfExists, removeDurable, writeJsonAtomic } from './durable.js';

/** The run in progress of one agent (README "The home folder"): what restart recovery reads. */
export interface ActiveRun {
  run_id: string;
  trigger: RunTrigger;
  started_at: string;
  /** The agent's process group, so a restarted daemon can kill an orphan on the same host. */
  pid: number | null;
  host: string;
  daemon_pid: number;
}

export type RunTrigger = 'file' | 'inbox' | 'cron' | 'cli' | 'resume';

export interface TaskCheckpoint {
  v: 1;
  task_id: string;
  /** Failed runs so far (crashes, non-zero exits, invalid output); a daemon interruption is not one. */
  attempts: number;
  runs: string[];
  active_run: ActiveRun | null;
  /** The agent's last `checkpoint` state. */
  state: unknown;
  checkpoint_at: string | null;
  /** How many calls the task had made at that checkpoint: a resume from it continues the journal there. */
  checkpoint_seq: number;
  /** Wall-clock time of the task's finished runs; the active run adds its own. */
  runtime_ms: number;
  /** Not before this time (backoff after a failed run). */
  next_attempt_at: string | null;
  last_error: { category: string; message: string } | null;
  /** The definition the task last ran under, to show a resume under a changed one. */
  agent_version: string | null;
  definition_hash: string | null;
  /** What the task has spent across its runs, as a floor for a journal that lost records (run/spend-floor.ts). */
  spend: StoredSpend | null;
}

export function newCheckpoint(taskId: string): TaskCheckpoint {
  return {
    v: 1,
    task_id: taskId,
    attempts: 0,
    runs: [],
    active_run: null,
    state: null,
    checkpoint_at: null,
    checkpoint_seq: 0,
    runtime_ms: 0,
    next_attempt_at: null,
    last_error: null,
    agent_version: null,
    definition_hash: null,
    spend: null,
  };
}

/** The agent's checkpoint, or null. A checkpoint for another task is stale and ignored. */
export async function readCheckpoint(paths: HomePaths, agent: string, taskId: string): Promise<TaskCheckpoint | null> {
  const bytes = await readIfExists(paths.checkpoint(agent));
  if (bytes === null) return null;
  try {
    const value = JSON.parse(bytes.toString('utf8')) as TaskCheckpoint;
    return value.task_id === taskId ? { ...newCheckpoint(taskId), ...value } : null;
  } catch {
    return null; // written atomically, so only a person's edit can break it; start over
  }
}

async function writeCheckpoint(paths: HomePaths, agent: string, checkpoint: TaskCheckpoint): Promise<void> {
  await writeJsonAtomic(paths.checkpoint(agent), checkpoint);
}

export async function removeCheckpoint(paths: HomePaths, agent: string): Promise<void> {
  await removeDurable(paths.checkpoint(agent));
}

/**
 * The one holder of a claimed task's checkpoint: the claim, the run's
 * checkpoints and the outcome all change it here, and each change is written
 * at once. Nobody else keeps a copy that could go stale.
 */
export class CheckpointOwner {
  constructor(
    private readonly paths: HomePaths,
    readonly agent: string,
    private value: TaskCheckpoint,
  ) {}

  get current(): TaskCheckpoint {
    return this.value;
  }

  /** The new checkpoint, made durable. */
  async write(next: TaskCheckpoint): Promise<void> {
    this.value = next;
    await writeCheckpoint(this.paths, this.agent, next);
  }

  /** A change of the current checkpoint, made durable; returns the new one. */
  async update(change: (current: TaskCheckpoint) => TaskCheckpoint): Promise<TaskCheckpoint> {
    await this.write(change(this.value));
    return this.value;
  }

  /**
   * A change kept in memory and written with the next write, for a fact no
   * crash needs (the agent's pid: the process registry has it first).
   */
  hold(change: (current: TaskCheckpoint) => TaskCheckpoint): void {
    this.value = change(this.value);
  }

  /** Taken as the current value without a write: the task left the queue (done, dead letter), its checkpoint goes with it. */
  settle(next: TaskCheckpoint): void {
    this.value = next;
  }
}
