import type { AgentDefinition, BudgetLimits } from '../config/types.js';
import type { CheckpointOwner, RunTrigger } from '../store/checkpoint.js';
import { appendHistory } from '../store/history.js';
import { readJournal, type JournalSpend } from '../store/journal.js';
import { addDailySpend, readDailySpend } from '../store/spend.js';
import type { Task } from '../store/tasks.js';
import { applyEffects } from '../store/effects.js';
import { planOutcome } from '../core/outcome-plan.js';
import { planInterruptedRun } from '../core/boot-plan.js';
import { alertDailySpend } from './daily-alert.js';
import type { RunReport } from './run-host.js';
import type { RunnerDeps } from './runner.js';

/**
 * A run's outcome into the files: the facts are gathered, core/outcome-plan.ts
 * decides, store/effects.ts writes (done, dead letter, an outbox item, a
 * handoff, a retry later), then the day's spend and one history line.
 */

export interface FinishedRun {
  agent: AgentDefinition;
  task: Task;
  claimed: Buffer;
  /** The task's checkpoint, in its one owner. */
  checkpoint: CheckpointOwner;
  runId: string;
  trigger: RunTrigger;
  /** Epoch ms. */
  startedAt: number;
  report: RunReport;
  limits: BudgetLimits;
  definitionChanged: boolean;
  /** The task's spend before this run (journal, floored by the checkpoint). */
  spentBefore: JournalSpend;
}

export async function applyOutcome(deps: RunnerDeps, run: FinishedRun): Promise<void> {
  const { paths } = deps;
  const { agent, report } = run;
  const now = deps.clock.now();
  const atDailyCap = report.outcome.kind === 'limit' && report.outcome.reason === 'daily_cost';
  const plan = planOutcome({
    ...run,
    checkpoint: run.checkpoint.current,
    now,
    // A stop by the daily cap shows today's spend, this run included.
    spentTodayUsd: atDailyCap ? (await readDailySpend(paths, agent.name, new Date(now))) + report.spend.costUsd : null,
    outageReadyAt: report.outageModel ? (deps.models.circuitReadyAt?.(report.outageModel) ?? null) : null,
    random: deps.random,
  });
  await applyEffects({ paths, audit: deps.audit, log: deps.log, fence: deps.fence, agent: agent.name, claimed: run.claimed, checkpoint: run.checkpoint }, plan.effects);
  run.checkpoint.settle(plan.checkpoint);
  await deps.fence?.(); // each step below writes: none of them after the lease is lost
  const spentToday = await addDailySpend(paths, agent.name, new Date(now), report.spend.costUsd);
  await alertDailySpend(deps, agent, spentToday - report.spend.costUsd, spentToday, new Date(now));
  await appendHistory(paths, plan.history);
}

export { crossesDailyAlert, DAILY_ALERT_SHARE } from './daily-alert.js';

/**
 * The daemon died during a run: its history line from the journal (what it
 * really spent), and the run closed in the checkpoint (core/boot-plan.ts).
 */
export async function recordInterruptedRun(paths: RunnerDeps['paths'], agent: AgentDefinition, task: Task, checkpoint: CheckpointOwner, now: Date): Promise<void> {
  const journal = await readJournal(paths.journal(agent.name, task.id));
  const plan = planInterruptedRun(checkpoint.current, journal, agent, task, now.getTime());
  await addDailySpend(paths, agent.name, now, plan.costUsd);
  await appendHistory(paths, plan.history);
  await checkpoint.write(plan.checkpoint);
}
