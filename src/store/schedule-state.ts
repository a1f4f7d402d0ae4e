import type { HomePaths } from './paths.js';
import { readIfExists, writeJsonAtomic } from './durable.js';

/**
 * state/<agent>/schedule.json: what the daemon did with each `schedule`
 * entry of the agent, so a restart knows which fire times it missed.
 */
export interface ScheduleState {
  v: 1;
  schedules: ScheduleRecord[];
}

export type FireOutcome = 'written' | 'exists' | 'pending';

export interface ScheduleRecord {
  /** The entry's position in the definition's `schedule` list. */
  index: number;
  cron: string;
  /** The last due time the daemon handled (wrote its task, found it written, or skipped it), ISO. */
  last_fired: string | null;
  last_task_id: string | null;
  last_outcome: FireOutcome | null;
  /** Every fire time up to here is accounted for: handled, or reported missed. ISO. */
  accounted_until: string;
  /** The last report of fire times missed while the daemon was down (never replayed). */
  missed: MissedReport | null;
}

export interface MissedReport {
  count: number;
  /** True when counting stopped at the cap: `count` or more were missed. */
  capped: boolean;
  first: string;
  last: string;
  reported_at: string;
}

/** The agent's schedule state, or null when there is none or it is unreadable (it is only a record). */
export async function readScheduleState(paths: HomePaths, agent: string): Promise<ScheduleState | null> {
  const bytes = await readIfExists(paths.scheduleState(agent));
  if (bytes === null) return null;
  try {
    const value = JSON.parse(bytes.toString('utf8')) as ScheduleState;
    return value.v === 1 && Array.isArray(value.schedules) ? value : null;
  } catch {
    return null;
  }
}

export async function writeScheduleState(paths: HomePaths, agent: string, state: ScheduleState): Promise<void> {
  await writeJsonAtomic(paths.scheduleState(agent), state);
}
