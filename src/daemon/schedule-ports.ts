import { claimFire, pruneFireRecords } from '../store/fire-record.js';
import { createTask, type Logger as CronLogger } from 'node-cron';
import type { Logger } from 'pino';
import type { HomePaths } from '../store/paths.js';
import { exists, listDir, readIfExists } from '../store/durable.js';
import { writeInboxTask } from '../store/inbox-writer.js';
import { isTaskFileName } from '../store/inbox-index.js';
import { readOutbox } from '../store/outbox.js';
import { readScheduleState, writeScheduleState, type ScheduleState } from '../store/schedule-state.js';
import type { Task } from '../store/tasks.js';
import type { TaskPlace } from './schedule-rules.js';

/**
 * What a schedule reads, writes and waits on (README "Agent definitions"),
 * as two narrow ports with their real implementations: the home's files
 * (`fileScheduleStore`) and node-cron (`nodeCronTimer`). Tests give
 * daemon/schedules.ts fakes of both.
 */

/** The files a schedule reads and writes; a fake in tests. */
export interface ScheduleStore {
  /** Where task `id` of `agent` is now, or null. */
  locate(agent: string, id: string): Promise<TaskPlace | null>;
  /** Ids of the agent's unfinished tasks: inbox files, the current task, and tasks of open outbox items. */
  pendingIds(agent: string): Promise<string[]>;
  /** Write `task` to the agent's inbox; false when another daemon claimed this fire first (nothing written). */
  write(agent: string, task: Task): Promise<boolean | void>;
  readState(agent: string): Promise<ScheduleState | null>;
  writeState(agent: string, state: ScheduleState): Promise<void>;
}

/** Starts a job that calls `onDue` at each fire time of a cron; a manual one in tests. */
export interface CronTimer {
  /** Throws on an invalid expression. */
  start(cron: string, name: string, onDue: (due: Date) => Promise<void>): { stop(): void };
}

export function fileScheduleStore(paths: HomePaths): ScheduleStore {
  const currentId = async (agent: string): Promise<string | null> => {
    const bytes = await readIfExists(paths.currentTask(agent));
    if (bytes === null) return null;
    try {
      const id = (JSON.parse(bytes.toString('utf8')) as { id?: unknown }).id;
      return typeof id === 'string' ? id : null;
    } catch {
      return null; // being written, or broken: the claim dead-letters it
    }
  };
  return {
    async locate(agent, id) {
      if (await exists(paths.inboxTask(agent, id))) return 'inbox';
      if ((await currentId(agent)) === id) return 'current';
      if (await exists(paths.done(agent, id))) return 'done';
      if (await exists(paths.deadLetter(agent, id))) return 'dead-letter';
      return null;
    },
    async pendingIds(agent) {
      const ids = (await listDir(paths.inboxDir(agent))).filter(isTaskFileName).map((n) => n.slice(0, -'.json'.length));
      const current = await currentId(agent);
      if (current !== null) ids.push(current);
      try {
        for (const item of (await readOutbox(paths, agent)).items) if (item.status === 'open' && item.task_id) ids.push(item.task_id);
      } catch {
        // a broken outbox.json holds the current task back anyway, and that task is counted above
      }
      return ids;
    },
    async write(agent, task) {
      const due = new Date(task.created_at);
      if (!(await claimFire(paths, agent, task.id, due))) return false;
      await writeInboxTask(paths, agent, task.id, task);
      await pruneFireRecords(paths, agent, due.getTime());
      return true;
    },
    readState: (agent) => readScheduleState(paths, agent),
    writeState: (agent, state) => writeScheduleState(paths, agent, state),
  };
}

/**
 * node-cron jobs, with overlap prevention and node-cron's own warnings sent to
 * our log instead of the console. node-cron skips fire times it reaches late
 * (the event loop was blocked, the machine slept) and reports each one; a
 * burst of those is logged once and only the latest is handled, late, so a
 * long sleep never turns into a burst of tasks.
 */
export function nodeCronTimer(log: Logger): CronTimer {
  const cronLog: CronLogger = {
    info: (message) => log.debug({ source: 'node-cron', detail: message }, 'node-cron'),
    warn: (message) => log.warn({ source: 'node-cron', detail: message }, 'node-cron'),
    error: (message, err) => log.error({ source: 'node-cron', detail: String(message), err }, 'node-cron'),
    debug: (message, err) => log.debug({ source: 'node-cron', detail: String(message), err }, 'node-cron'),
  };
  return {
    start(cron, name, onDue) {
      const task = createTask(cron, (ctx) => onDue(ctx.date), { name, noOverlap: true, logger: cronLog });
      let late: Date[] = [];
      task.on('execution:missed', (ctx) => {
        late.push(ctx.date);
        if (late.length > 1) return;
        setImmediate(() => {
          const slots = late;
          late = [];
          const last = slots[slots.length - 1]!;
          log.warn({ schedule: name, late: slots.length, first: slots[0]!.toISOString(), due: last.toISOString() }, 'schedule fire times reached late; the last one is handled');
          onDue(last).catch((err: unknown) => log.error({ schedule: name, err }, 'late schedule fire failed'));
        });
      });
      void task.start();
      return { stop: () => void task.destroy() };
    },
  };
}
