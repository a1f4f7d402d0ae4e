import type { Logger } from 'pino';
import type { AgentDefinition, ScheduleEntry } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { FireOutcome, ScheduleRecord } from '../store/schedule-state.js';
import { decideFire, missedFires, scheduledTask, scheduleTaskId, type FireDecision, type Missed } from './schedule-rules.js';
import type { CronTimer, ScheduleStore } from './schedule-ports.js';

/**
 * An agent's `schedule` (README "Agent definitions"): at each fire time of an
 * entry's cron, its task is written to the agent's inbox under an id made of
 * the entry's index and the due time, so a restart, a second daemon on the
 * same home or a repeated fire never writes it twice. A fire is skipped while
 * the entry's previous task is still pending. Fire times missed while the
 * daemon was down are counted, logged and recorded in
 * state/<agent>/schedule.json, never replayed: the next regular fire is the
 * next task.
 *
 * This module runs the jobs; the decisions are in daemon/schedule-rules.ts,
 * the ports and their real implementations in daemon/schedule-ports.ts.
 */

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
