import type { AgentDefinition, BudgetLimits } from '../config/types.js';
import { writeJsonAtomic } from '../store/durable.js';
import { writeCheckpoint, type RunTrigger, type TaskCheckpoint } from '../store/checkpoint.js';
import { appendHistory, readLastHistoryLine, type HistoryLine, type RunStatus } from '../store/history.js';
import { hostId } from '../store/host.js';
import { interruptedReason } from '../core/claim-failure.js';
import { lastClaimError } from './claim-errors.js';
import { emptySpend, readJournal, type JournalSpend, type JournalSummary } from '../store/journal.js';
import type { BudgetUsed } from '../protocol/messages.js';
import { addOutboxItem, markDelivered, newItemId, type OutboxItem, type OutboxKind } from '../store/outbox.js';
import { addDailySpend, readDailySpend } from '../store/spend.js';
import { completeTask, deadLetterTask, type Task } from '../store/tasks.js';
import { decideRunRetry } from '../core/run-retry.js';
import { failureOf, type Failure } from '../errors.js';
import { limitsView, usedView } from './budget.js';
import { alertDailySpend } from './daily-alert.js';
import type { RunReport } from './run-host.js';
import type { RunnerDeps } from './runner.js';
import { outageRetryAt } from './outage.js';
import { addSpend, fromStored, reconcileSpend, toStored } from './spend-floor.js';

/**
 * What a run's outcome means for the files: done, dead-letter, an outbox
 * item, a handoff, a retry later; then one history line. Each write is
 * ordered so a crash between two of them is settled on the next claim.
 */

export interface FinishedRun {
  agent: AgentDefinition;
  task: Task;
  claimed: Buffer;
  checkpoint: TaskCheckpoint;
  runId: string;
  trigger: RunTrigger;
  startedAt: Date;
  report: RunReport;
  limits: BudgetLimits;
  definitionChanged: boolean;
  /** The task's spend before this run (journal, floored by the checkpoint). */
  spentBefore: JournalSpend;
}

export async function applyOutcome(deps: RunnerDeps, run: FinishedRun): Promise<void> {
  const { paths } = deps;
  const { agent, task, report } = run;
  const now = new Date(deps.clock.now());
  let checkpoint: TaskCheckpoint = {
    ...run.checkpoint,
    active_run: null,
    runtime_ms: run.checkpoint.runtime_ms + report.runtimeMs,
    spend: toStored(addSpend(run.spentBefore, report.spend)),
  };
  const outcome = report.outcome;
  let status: RunStatus;
  let error: (Failure & { stderr_tail?: string[] }) | null = null;

  switch (outcome.kind) {
    case 'done':
      status = 'done';
      await completeTask(paths, agent.name, run.claimed, { v: 1, task, status: 'done', output: outcome.output, finished_at: now.toISOString(), runs: checkpoint.runs });
      break;
    case 'escalated': {
      status = 'escalated';
      const m = outcome.message;
      if (m.state !== undefined) checkpoint = { ...checkpoint, state: m.state, checkpoint_at: now.toISOString(), checkpoint_seq: report.seq };
      await writeCheckpoint(paths, agent.name, checkpoint);
      await escalate(deps, run, 'uncertain', m.reason, { question: m.question, blockers: m.blockers, details: { state: m.state ?? checkpoint.state } });
      break;
    }
    case 'limit':
    case 'interrupted': {
      status = outcome.kind === 'limit' ? 'limit' : 'interrupted';
      if (outcome.kind === 'limit') error = failureOf('budget', `budget reached: ${outcome.reason}`);
      if (outcome.handoff?.state !== undefined) checkpoint = { ...checkpoint, state: outcome.handoff.state, checkpoint_at: now.toISOString(), checkpoint_seq: report.seq };
      await writeCheckpoint(paths, agent.name, checkpoint);
      // Budgets are per task across its runs: the journal holds every run's real spend.
      const journal = await readJournal(paths.journal(agent.name, task.id));
      const used = usedView(taskSpent(reconcileSpend(journal.spend, fromStored(checkpoint.spend)).spend, checkpoint.runtime_ms));
      const shown = await handoffFigures(deps, run, outcome.reason, used);
      await writeHandoff(deps, run, checkpoint, outcome.reason, outcome.handoff, journal, shown);
      if (outcome.kind === 'limit') {
        await escalate(deps, run, 'limit', `budget reached: ${outcome.reason}`, {
          question: outcome.reason === 'daily_cost' ? `The agent's daily_cost_usd ($${run.limits.dailyCostUsd}) is spent: continue after the UTC day ends (or raise daily_cost_usd), or cancel?` : 'Continue (optionally with --extend), or cancel?',
          details: shown,
        });
      }
      break;
    }
    case 'provider_unavailable':
      status = 'escalated';
      error = failureOf('provider_error', outcome.message, 'provider_unavailable');
      await writeCheckpoint(paths, agent.name, checkpoint);
      await escalate(deps, run, 'provider_unavailable', `model ${outcome.model} unavailable and the task is critical: ${outcome.message}`, {
        question: 'Retry when the provider is back (retry), or cancel?',
      });
      break;
    case 'approval':
      status = 'escalated';
      await writeCheckpoint(paths, agent.name, checkpoint);
      await escalate(deps, run, 'approval', approvalReason(outcome), {
        question: `Run ${outcome.tool} with exactly these arguments? approve or deny`,
        details: {
          seq: outcome.seq,
          tool: outcome.tool,
          args: outcome.args,
          call_hash: outcome.callHash,
          cause: outcome.cause,
          ...(outcome.expired ? { expired_approval: { at: new Date(outcome.expired.at).toISOString(), by: outcome.expired.by } } : {}),
        },
      });
      break;
    case 'unsure_side_effect':
      status = 'escalated';
      await writeCheckpoint(paths, agent.name, checkpoint);
      await escalate(deps, run, 'unsure_side_effect', `the daemon stopped during ${outcome.tool} (call ${outcome.seq}), which has side effects: it may or may not have happened`, {
        question: 'Did this call happen? approve = it happened, treat it as done; retry = run it again; cancel = drop the task',
        details: { seq: outcome.seq, tool: outcome.tool, args: outcome.args, idempotency_key: outcome.idempotencyKey },
      });
      break;
    case 'failed': {
      error = { ...failureOf(outcome.category, outcome.message), ...(outcome.stderrTail ? { stderr_tail: outcome.stderrTail } : {}) };
      if (report.outageModel) {
        // Not the task's fault: no attempt counted, no dead letter; it waits for the model (run/outage.ts).
        status = 'failed';
        const retryAt = outageRetryAt(deps.models.circuitReadyAt?.(report.outageModel) ?? null, now.getTime(), agent.retry.baseDelayMs);
        checkpoint = { ...checkpoint, last_error: error, next_attempt_at: new Date(retryAt).toISOString() };
        await writeCheckpoint(paths, agent.name, checkpoint);
        deps.log.warn({ task_id: task.id, run_id: run.runId, model: report.outageModel }, 'model unavailable; the task waits for it, no attempt counted');
        break;
      }
      const decision = decideRunRetry(outcome.category, checkpoint.attempts, { maxAttempts: agent.maxAttempts, ...agent.retry }, deps.random);
      const attempts = decision.attempts;
      checkpoint = { ...checkpoint, attempts, last_error: error };
      if (decision.kind === 'dead_letter') {
        status = 'dead_letter';
        await deadLetterTask(paths, agent.name, run.claimed, {
          v: 1,
          agent: agent.name,
          task,
          error,
          attempts,
          runs: checkpoint.runs,
          source: 'current',
          dead_lettered_at: now.toISOString(),
        });
      } else {
        status = 'failed';
        checkpoint = { ...checkpoint, next_attempt_at: new Date(now.getTime() + decision.delayMs).toISOString() };
        await writeCheckpoint(paths, agent.name, checkpoint);
      }
      break;
    }
  }
  if (status === 'done' || status === 'dead_letter') {
    await deps.audit({ event: status, agent: agent.name, task_id: task.id, run_id: run.runId, details: error ? { error } : { runs: checkpoint.runs.length } });
  }
  await deps.fence?.(); // each step below writes: none of them after the lease is lost
  const spentToday = await addDailySpend(paths, agent.name, now, report.spend.costUsd);
  await alertDailySpend(deps, agent, spentToday - report.spend.costUsd, spentToday, now);
  await appendHistory(paths, historyLine(run, status, error, now, report.spend));
}

/** Why the call waits: the tool's policy, or suspected injected content; and an earlier approval that expired. */
function approvalReason(outcome: Extract<RunReport['outcome'], { kind: 'approval' }>): string {
  const why =
    outcome.cause === 'suspected_injection'
      ? `${outcome.tool} needs approval before it runs: content that looks like an injected instruction entered this task (see its suspected_injection item)`
      : `${outcome.tool} needs approval before it runs`;
  return outcome.expired ? `${why}; the earlier approval (${new Date(outcome.expired.at).toISOString()}) is older than approval_ttl` : why;
}

/** What a task spent across all its runs, as budget.ts counts it. */
function taskSpent(spend: JournalSpend, runtimeMs: number) {
  return {
    steps: spend.steps,
    toolCalls: spend.toolCalls,
    tokens: spend.inputTokens + spend.outputTokens,
    costUsd: spend.costUsd,
    runtimeMs,
    dailyCostUsd: 0,
  };
}

function historyLine(run: FinishedRun, status: RunStatus, error: { category: string; message: string } | null, now: Date, spend: JournalSpend): HistoryLine {
  return {
    v: 1,
    run_id: run.runId,
    task_id: run.task.id,
    agent: run.agent.name,
    trigger: run.trigger,
    started_at: run.startedAt.toISOString(),
    ended_at: now.toISOString(),
    duration_ms: run.report.runtimeMs,
    status,
    steps: spend.steps,
    tool_calls: spend.toolCalls,
    tokens: { input: spend.inputTokens, output: spend.outputTokens },
    cost_usd: spend.costUsd,
    error_category: error?.category ?? null,
    error: error?.message ?? null,
    models: run.report.models,
    agent_version: run.agent.version,
    definition_hash: run.agent.hash,
    definition_changed: run.definitionChanged,
    degraded: run.report.degraded,
    model_latency_ms: run.report.modelLatencyMs,
  };
}

async function escalate(
  deps: RunnerDeps,
  run: FinishedRun,
  kind: OutboxKind,
  reason: string,
  extra: { question?: string; blockers?: unknown[]; details?: unknown },
): Promise<OutboxItem> {
  await deps.fence?.();
  const item = await addOutboxItem(deps.paths, {
    id: newItemId(run.agent.name),
    kind,
    agent: run.agent.name,
    task_id: run.task.id,
    run_id: run.runId,
    created_at: new Date(deps.clock.now()).toISOString(),
    reason,
    ...(extra.question !== undefined ? { question: extra.question } : {}),
    ...(extra.blockers !== undefined ? { blockers: extra.blockers } : {}),
    ...(extra.details !== undefined ? { details: extra.details } : {}),
    status: 'open',
  });
  await deps.audit({ event: 'escalation', agent: run.agent.name, task_id: run.task.id, run_id: run.runId, details: { item_id: item.id, kind, reason } });
  deps.log.warn({ task_id: run.task.id, run_id: run.runId, item_id: item.id, kind }, 'escalated to the outbox');
  return item;
}

async function writeHandoff(
  deps: RunnerDeps,
  run: FinishedRun,
  checkpoint: TaskCheckpoint,
  reason: string,
  handoff: { summary: string; next_steps?: unknown[] } | null,
  journal: JournalSummary,
  shown: { used: BudgetUsed; limits: BudgetUsed },
): Promise<void> {
  await deps.fence?.();
  await writeJsonAtomic(deps.paths.handoffFile(run.agent.name), {
    v: 1,
    agent: run.agent.name,
    task_id: run.task.id,
    run_id: run.runId,
    reason,
    at: new Date(deps.clock.now()).toISOString(),
    used: shown.used,
    limits: shown.limits,
    summary: handoff?.summary ?? null,
    next_steps: handoff?.next_steps ?? [],
    checkpoint: checkpoint.state,
    journal_tail: journal.tail,
  });
}

/**
 * Used against limits, as the handoff and the limit item show them. A stop by
 * the daily cap shows that cap and today's spend (this run included), not the
 * task's max_cost_usd, which was not what stopped it.
 */
async function handoffFigures(deps: RunnerDeps, run: FinishedRun, reason: string, used: BudgetUsed): Promise<{ used: BudgetUsed & { daily_cost_usd?: number }; limits: BudgetUsed & { daily_cost_usd?: number } }> {
  const limits = limitsView(run.limits);
  if (reason !== 'daily_cost') return { used, limits };
  const today = (await readDailySpend(deps.paths, run.agent.name, new Date(deps.clock.now()))) + run.report.spend.costUsd;
  return { used: { ...used, daily_cost_usd: today }, limits: { ...limits, daily_cost_usd: run.limits.dailyCostUsd } };
}

export { crossesDailyAlert, DAILY_ALERT_SHARE } from './daily-alert.js';

/** A person said cancel: the task goes to done with status cancelled. */
export async function cancelTask(deps: RunnerDeps, agent: AgentDefinition, task: Task, claimed: Buffer, checkpoint: TaskCheckpoint, item: OutboxItem): Promise<void> {
  const now = new Date(deps.clock.now());
  await markDelivered(deps.paths, agent.name, [item.id], now.toISOString());
  await completeTask(deps.paths, agent.name, claimed, {
    v: 1,
    task,
    status: 'cancelled',
    output: { cancelled_by: item.resolution?.by ?? null, item_id: item.id, reason: item.reason },
    finished_at: now.toISOString(),
    runs: checkpoint.runs,
  });
  await deps.audit({ event: 'cancel', agent: agent.name, task_id: task.id, by: item.resolution?.by ?? 'unknown', details: { item_id: item.id } });
  deps.log.info({ task_id: task.id, item_id: item.id }, 'task cancelled by a person');
}

/**
 * The daemon died during a run: write its history line from the journal
 * (what it really spent) and close it in the checkpoint. Its wall time up to
 * its last journal record counts toward max_runtime.
 */
export async function recordInterruptedRun(paths: RunnerDeps['paths'], agent: AgentDefinition, task: Task, checkpoint: TaskCheckpoint, now: Date): Promise<TaskCheckpoint> {
  const active = checkpoint.active_run!;
  const journal = await readJournal(paths.journal(agent.name, task.id));
  const spend = journal.spendByRun.get(active.run_id) ?? emptySpend();
  const lastAt = [...journal.tail].reverse().find((r) => r.run_id === active.run_id)?.at;
  const runtimeMs = lastAt ? Math.max(0, Date.parse(lastAt) - Date.parse(active.started_at)) : 0;
  const closed: TaskCheckpoint = { ...checkpoint, active_run: null, runtime_ms: checkpoint.runtime_ms + runtimeMs };
  const reason = interruptedReason(active, { host: hostId(), pid: process.pid }, lastClaimError(agent.name));
  // Once: a claim that failed after the line was appended (a full disk) comes back here with the run still open.
  const written = (await readLastHistoryLine(paths, agent.name))?.run_id === active.run_id;
  if (!written) await addDailySpend(paths, agent.name, now, spend.costUsd);
  if (!written) await appendHistory(paths, {
    v: 1,
    run_id: active.run_id,
    task_id: task.id,
    agent: agent.name,
    trigger: active.trigger,
    started_at: active.started_at,
    ended_at: now.toISOString(),
    duration_ms: runtimeMs,
    status: 'interrupted',
    steps: spend.steps,
    tool_calls: spend.toolCalls,
    tokens: { input: spend.inputTokens, output: spend.outputTokens },
    cost_usd: spend.costUsd,
    error_category: reason.category,
    error: reason.message,
    models: [],
    agent_version: checkpoint.agent_version ?? agent.version,
    definition_hash: checkpoint.definition_hash ?? agent.hash,
    definition_changed: false,
    degraded: false,
  });
  await writeCheckpoint(paths, agent.name, closed);
  return closed;
}
