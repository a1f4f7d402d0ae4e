import { claimFire, pruneFireRecords } from '../store/fire-record.js';
import { createTask, type Logger as CronLogger } from 'node-cron';
import type { Logger } from 'pino';
import type { AgentDefinition, ScheduleEntry } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { HomePaths } from '../store/paths.js';
import { exists, listDir, readIfExists } from '../store/durable.js';
import { writeInboxTask } from '../store/inbox-writer.js';
import { readOutbox } from '../store/outbox.js';
import { readScheduleState, writeScheduleState, type FireOutcome, type ScheduleRecord, type ScheduleState } from '../store/schedule-state.js';
import type { Task } from '../store/tasks.js';
import { fireTimes } from './cron-times.js';

/**
 * An agent's `schedule` (README "Agent definitions"): at each fire time of an
 * entry's cron, its task is written to the agent's inbox under an id made of
 * the entry's index and the due time, so a restart, a second daemon on the
 * same home or a repeated fire never writes it twice. A fire is skipped while
 * the entry's previous task is still pending. Fire times missed while the
 * daemon was down are counted, logged and recorded in
 * state/<agent>/schedule.json, never replayed: the next regular fire is the
 * next task.
 */

/** Fire times missed while the daemon was down are counted up to this many. */
export const MISSED_COUNT_CAP = 1000;

// ---- pure decisions ----

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

// ---- ports ----

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
      const ids = (await listDir(paths.inboxDir(agent))).filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -'.json'.length));
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

// ---- the jobs ----

export interface SchedulesOptions {
  store: ScheduleStore;
  timer: CronTimer;
  /** ms since the epoch. */
  now: () => number;
  log: Logger;
  /** Called after a task is written, so the agent is claimed without waiting for the watcher. */
  onWritten: (agent: string) => void;
}

interface AgentJobs {
  /** The schedule the jobs were built from, to rebuild only when it changes. */
  signature: string;
  jobs: { stop(): void }[];
}

/** The cron jobs of every loaded agent. */
export class Schedules {
  private readonly agents = new Map<string, AgentJobs>();
  /** Per agent, so two fires never interleave their schedule.json updates. */
  private readonly agentQueues = new Map<string, Promise<unknown>>();
  private syncing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: SchedulesOptions) {}

  /** Make the jobs match `definitions`: new and changed schedules get fresh jobs, gone ones are stopped. */
  sync(definitions: readonly AgentDefinition[]): Promise<void> {
    const next = this.syncing.then(() => this.syncNow(definitions));
    this.syncing = next.catch(() => undefined); // one failed sync never blocks the next
    return next;
  }

  /** Stop every job and wait for fires in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.syncing;
    for (const agent of [...this.agents.keys()]) this.stopAgent(agent);
    await Promise.all([...this.agentQueues.values()]);
  }

  /** Handle one due time of entry `index` of `agent`: what a job does when it fires. */
  fire(agent: string, index: number, entry: ScheduleEntry, due: Date): Promise<FireDecision | null> {
    return this.serial(agent, async () => {
      if (this.stopped) return null;
      const { store, log } = this.options;
      const taskId = scheduleTaskId(index, due);
      const fields = { agent, index, schedule: entry.cron, due: due.toISOString(), task_id: taskId };
      try {
        const decision = decideFire(index, due, await store.locate(agent, taskId), await store.pendingIds(agent));
        if (decision.kind === 'write') {
          if ((await store.write(agent, scheduledTask(entry, index, due))) === false) {
            // Another daemon on this home claimed the due time first (store/fire-record.ts).
            log.info({ ...fields, outcome: 'exists', where: 'claimed' }, 'schedule fired');
            await this.recordFire(agent, index, entry.cron, due, taskId, 'exists');
            return { kind: 'exists', taskId, where: 'claimed' } satisfies FireDecision;
          }
          this.options.onWritten(agent);
          log.info({ ...fields, outcome: 'written' }, 'schedule fired');
        } else if (decision.kind === 'exists') {
          log.info({ ...fields, outcome: 'exists', where: decision.where }, 'schedule fired');
        } else {
          log.info({ ...fields, outcome: 'pending', pending_task_id: decision.pendingId }, 'schedule fired; skipped while its previous task is pending');
        }
        await this.recordFire(agent, index, entry.cron, due, taskId, decision.kind === 'write' ? 'written' : decision.kind);
        return decision;
      } catch (err) {
        log.error({ ...fields, err }, 'schedule fire failed');
        return null;
      }
    });
  }

  private async syncNow(definitions: readonly AgentDefinition[]): Promise<void> {
    if (this.stopped) return;
    const present = new Set(definitions.map((d) => d.name));
    for (const agent of [...this.agents.keys()]) if (!present.has(agent)) this.stopAgent(agent);
    for (const definition of definitions) {
      const signature = JSON.stringify(definition.schedule);
      if ((this.agents.get(definition.name)?.signature ?? JSON.stringify([])) === signature) continue;
      this.stopAgent(definition.name);
      try {
        await this.serial(definition.name, () => this.startAgent(definition, signature));
      } catch (err) {
        this.options.log.error({ agent: definition.name, err }, 'schedules not started');
      }
    }
  }

  private async startAgent(definition: AgentDefinition, signature: string): Promise<void> {
    const { store, timer, log } = this.options;
    const agent = definition.name;
    const now = new Date(this.options.now());
    const previous = (await store.readState(agent)) ?? { v: 1, schedules: [] };
    const records: ScheduleRecord[] = [];
    for (const [index, entry] of definition.schedule.entries()) {
      const old = previous.schedules.find((r) => r.index === index);
      const kept = old?.cron === entry.cron ? old : undefined;
      const missed = await this.missedReport(agent, index, entry.cron, kept, now);
      records.push({
        index,
        cron: entry.cron,
        last_fired: kept?.last_fired ?? null,
        last_task_id: kept?.last_task_id ?? null,
        last_outcome: kept?.last_outcome ?? null,
        accounted_until: now.toISOString(),
        missed: missed ?? kept?.missed ?? null,
      });
    }
    if (records.length > 0 || previous.schedules.length > 0) await store.writeState(agent, { v: 1, schedules: records });
    const jobs: { stop(): void }[] = [];
    for (const [index, entry] of definition.schedule.entries()) {
      try {
        jobs.push(timer.start(entry.cron, `${agent}#${index}`, (due) => this.fire(agent, index, entry, due).then(() => undefined)));
      } catch (err) {
        log.error({ agent, index, schedule: entry.cron, problem: errorMessage(err) }, 'schedule not started: invalid cron expression');
      }
    }
    this.agents.set(agent, { signature, jobs });
    if (jobs.length > 0) log.info({ agent, schedules: jobs.length }, 'schedules started');
  }

  /** Count and log the fire times missed while the daemon was down; null when none. */
  private async missedReport(agent: string, index: number, cron: string, record: ScheduleRecord | undefined, now: Date): Promise<ScheduleRecord['missed']> {
    let missed: Missed | null;
    try {
      missed = missedFires(record, cron, now);
    } catch {
      return null; // an invalid expression is reported when its job fails to start
    }
    if (!missed) return null;
    // A crash between writing a task and recording the fire leaves the first "missed" time handled.
    const first = missed.times[0];
    if (first && (await this.options.store.locate(agent, scheduleTaskId(index, first))) !== null) missed.times.shift();
    const count = missed.times.length;
    if (count === 0) return null;
    const report = {
      count,
      capped: missed.capped,
      first: missed.times[0]!.toISOString(),
      last: missed.times[count - 1]!.toISOString(),
      reported_at: now.toISOString(),
    };
    this.options.log.warn({ agent, index, schedule: cron, missed: count, capped: report.capped, first: report.first, last: report.last, last_fired: record?.last_fired ?? null }, 'schedule missed fire times while the daemon was down; not replayed');
    return report;
  }

  private async recordFire(agent: string, index: number, cron: string, due: Date, taskId: string, outcome: FireOutcome): Promise<void> {
    const { store } = this.options;
    const state = (await store.readState(agent)) ?? { v: 1, schedules: [] };
    const at = due.toISOString();
    const old = state.schedules.find((r) => r.index === index && r.cron === cron);
    const record: ScheduleRecord = {
      index,
      cron,
      last_fired: at,
      last_task_id: taskId,
      last_outcome: outcome,
      accounted_until: old && Date.parse(old.accounted_until) > due.getTime() ? old.accounted_until : at,
      missed: old?.missed ?? null,
    };
    const schedules = [...state.schedules.filter((r) => r.index !== index), record].sort((a, b) => a.index - b.index);
    await store.writeState(agent, { v: 1, schedules });
  }

  private stopAgent(agent: string): void {
    const entry = this.agents.get(agent);
    if (!entry) return;
    for (const job of entry.jobs) {
      try {
        job.stop();
      } catch (err) {
        this.options.log.warn({ agent, err }, 'schedule job did not stop cleanly');
      }
    }
    this.agents.delete(agent);
  }

  /** Run `body` after every earlier body of the same agent. */
  private serial<T>(agent: string, body: () => Promise<T>): Promise<T> {
    const before = this.agentQueues.get(agent) ?? Promise.resolve();
    const result = before.then(body, body);
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.agentQueues.set(agent, settled);
    void settled.then(() => {
      if (this.agentQueues.get(agent) === settled) this.agentQueues.delete(agent);
    });
    return result;
  }
}

