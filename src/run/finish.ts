import type { AgentDefinition } from '../config/types.js';
import type { CheckpointOwner } from '../store/checkpoint.js';
import { appendHistory, readLastHistoryLine } from '../store/history.js';
import { hostId } from '../store/host.js';
import { interruptedReason } from '../core/claim-failure.js';
import { lastClaimError } from './claim-errors.js';
import { readJournal } from '../store/journal.js';
import { addDailySpend, readDailySpend } from '../store/spend.js';
import type { Task } from '../store/tasks.js';
import { applyEffects } from '../store/effects.js';
import { planOutcome, type OutcomeFacts } from '../core/outcome-plan.js';
import { planInterruptedRun } from '../core/boot-plan.js';
import { alertDailySpend } from './daily-alert.js';
import type { RunnerDeps } from './runner.js';

/**
 * A run's outcome into the files: the facts are gathered, core/outcome-plan.ts
 * decides, store/effects.ts writes (done, dead letter, an outbox item, a
 * handoff, a retry later), then the day's spend and one history line.
 */

/** The run's facts as the outcome plan takes them, with the checkpoint in its one owner and the claimed bytes. */
export type FinishedRun = Omit<OutcomeFacts, 'checkpoint' | 'now' | 'spentTodayUsd' | 'outageReadyAt' | 'random'> & {
  claimed: Buffer;
  checkpoint: CheckpointOwner;
};

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
  if (report.spend.costUsd > 0) {
    // A run that cost nothing moves no spend and crosses no alert line: the day's file is not read again (README.md, Benchmark: P3).
    const spentToday = await addDailySpend(paths, agent.name, new Date(now), report.spend.costUsd);
    await alertDailySpend(deps, agent, spentToday - report.spend.costUsd, spentToday, new Date(now));
  }
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
  const active = checkpoint.current.active_run!;
  // Only a run of another daemon process ended because a daemon stopped; this one's claim failed (core/claim-failure.ts).
  const reason = interruptedReason(active, { host: hostId(), pid: process.pid }, lastClaimError(agent.name));
  // Once: a claim that failed after the line was appended (a full disk) comes back here with the run still open.
  const written = (await readLastHistoryLine(paths, agent.name))?.run_id === active.run_id;
  if (!written) await addDailySpend(paths, agent.name, now, plan.costUsd);
  if (!written) await appendHistory(paths, { ...plan.history, error_category: reason.category, error: reason.message });
  await checkpoint.write(plan.checkpoint);
}
