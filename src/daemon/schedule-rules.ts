import type { ScheduleEntry } from '../config/types.js';
import type { ScheduleRecord } from '../store/schedule-state.js';
import type { Task } from '../store/tasks.js';
import { fireTimes } from './cron-times.js';

/**
 * The decisions of a schedule (README "Agent definitions"), pure functions of
 * their inputs: the id and bytes of a fire's task, whether a due time writes
 * it, and which fire times were missed while the daemon was down.
 * daemon/schedules.ts runs them on the timer's fires.
 */

/** Fire times missed while the daemon was down are counted up to this many. */
export const MISSED_COUNT_CAP = 1000;

/** `cron-<index>-<YYYYMMDDHHmm>` in UTC, with the seconds appended when the due time has any. */
export function scheduleTaskId(index: number, due: Date): string {
  const stamp = due.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDHHmmss
  return `cron-${index}-${stamp.endsWith('00') ? stamp.slice(0, 12) : stamp}`;
}

/** The prefix every task id of schedule entry `index` starts with (requeued copies too). */
export function scheduleTaskPrefix(index: number): string {
  return `cron-${index}-`;
}

/** The inbox task of entry `index` for `due`: created_at is the due time, so every writer writes the same bytes. */
export function scheduledTask(entry: ScheduleEntry, index: number, due: Date): Task {
  const template = entry.task as Partial<Task>;
  const metadata = typeof template.metadata === 'object' && template.metadata !== null ? template.metadata : {};
  return {
    ...template,
    id: scheduleTaskId(index, due),
    created_at: due.toISOString(),
    goal: String(template.goal ?? ''),
    metadata: { ...metadata, trigger: 'cron', schedule: entry.cron, due: due.toISOString() },
  };
}

/** Where a task id is now. */
/** `claimed`: another daemon claimed the fire (store/fire-record.ts) and writes it. */
export type TaskPlace = 'inbox' | 'current' | 'done' | 'dead-letter' | 'claimed';

export type FireDecision =
  | { kind: 'write'; taskId: string }
  /** This due time's task is already written (a restart or a second daemon). */
  | { kind: 'exists'; taskId: string; where: TaskPlace }
  /** The entry's previous task is still in the inbox, current, or waiting on the outbox. */
  | { kind: 'pending'; taskId: string; pendingId: string };

/** What to do at a due time, from where its id already is and which task ids of the agent are still pending. */
export function decideFire(index: number, due: Date, where: TaskPlace | null, pendingIds: readonly string[]): FireDecision {
  const taskId = scheduleTaskId(index, due);
  if (where !== null) return { kind: 'exists', taskId, where };
  const pendingId = pendingIds.find((id) => id.startsWith(scheduleTaskPrefix(index)));
  if (pendingId !== undefined) return { kind: 'pending', taskId, pendingId };
  return { kind: 'write', taskId };
}

export interface Missed {
  /** Fire times in (from, now], oldest first, at most MISSED_COUNT_CAP. */
  times: Date[];
  capped: boolean;
}

/**
 * The fire times of `cron` nobody handled: after what `record` accounts for,
 * up to `now`. Null when there is nothing to compare with (a new entry, or
 * its cron changed).
 */
export function missedFires(record: ScheduleRecord | undefined, cron: string, now: Date, cap = MISSED_COUNT_CAP): Missed | null {
  if (!record || record.cron !== cron) return null;
  const from = Math.max(Date.parse(record.accounted_until), record.last_fired ? Date.parse(record.last_fired) : 0);
  if (!Number.isFinite(from)) return null;
  const times = fireTimes(cron, new Date(from), now, cap + 1);
  return { times: times.slice(0, cap), capped: times.length > cap };
}
