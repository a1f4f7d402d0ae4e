import type { RunTrigger } from '../store/checkpoint.js';
import { promoteNext } from '../store/promotion.js';
import { settleCurrentTask } from '../store/current-task.js';
import type { Task } from '../store/tasks.js';
import { NO_PARKED_COPY, takeParked, type ParkedCopy } from '../store/waiting.js';
import type { ClaimResult, RunnerDeps } from './runner.js';

/**
 * Step 1 of a claim (docs/architecture.md, "From file to done"): which task
 * the agent works on. The caller holds the agent lock.
 */

/** `parked`: what waiting/ holds under the task's id, when this claim's listing of it already tells (store/waiting.ts takeParked). */
export type Picked = { kind: 'picked'; task: Task; bytes: Buffer; trigger: RunTrigger; parked?: ParkedCopy } | { kind: 'none'; result: ClaimResult };

/** Step 1: the task: current-task.json, else a parked task a person has answered, else the next one from the inbox. */
export async function pickTask(deps: RunnerDeps, agent: string, requestedTrigger?: RunTrigger): Promise<Picked> {
  const { paths, log } = deps;
  const now = new Date(deps.clock.now());
  const current = await settleCurrentTask(paths, agent, now, deps.config.maxFileBytes);
  if (current.kind === 'settling') return none({ kind: 'waiting', untilMs: current.untilMs });
  if (current.kind === 'dead_lettered') {
    log.warn({ task_id: current.id, problems: current.problems }, 'malformed current-task.json dead-lettered');
    return none({ kind: 'settled' });
  }
  if (current.kind === 'task') return { kind: 'picked', task: current.task, bytes: current.bytes, trigger: requestedTrigger ?? 'file' };
  // A parked task whose person has answered comes back ahead of the inbox (store/waiting.ts).
  const parked = await takeParked(paths, agent);
  if (parked.kind === 'task') return { kind: 'picked', task: parked.task, bytes: parked.bytes, trigger: requestedTrigger ?? 'file' };
  const promoted = await promoteNext(paths, agent, now, deps.config.maxFileBytes, deps.inbox);
  switch (promoted.kind) {
    case 'dead_lettered':
      log.warn({ task_ids: promoted.ids }, 'malformed inbox tasks dead-lettered');
      return none({ kind: 'settled' });
    case 'settling':
      return none({ kind: 'waiting', untilMs: promoted.untilMs });
    case 'refused':
      log.error({ problem: promoted.problem }, 'inbox refused');
      return none({ kind: 'blocked', itemId: null, reason: promoted.problem });
    case 'empty':
      return none({ kind: 'idle' });
  }
  if (promoted.deadLettered.length > 0) log.warn({ task_ids: promoted.deadLettered }, 'malformed inbox tasks dead-lettered');
  const trigger = requestedTrigger ?? (promoted.task.metadata?.trigger === 'cron' ? 'cron' : 'inbox'); // a schedule's task (daemon/schedules.ts)
  return { kind: 'picked', task: promoted.task, bytes: promoted.bytes, trigger, parked: parked.ids.has(promoted.task.id) ? undefined : NO_PARKED_COPY };
}

function none(result: ClaimResult): Picked {
  return { kind: 'none', result };
}
