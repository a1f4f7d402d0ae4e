import type { AgentDefinition, BudgetLimits } from '../config/types.js';
import type { BudgetUsed } from '../protocol/messages.js';
import type { RunTrigger, TaskCheckpoint } from '../store/checkpoint.js';
import type { HistoryLine, RunStatus } from '../store/history.js';
import type { JournalSpend } from '../store/journal.js';
import type { Task } from '../store/tasks.js';
import type { RunReport } from '../run/run-types.js';
import { failureOf, type Failure } from '../errors.js';
import { limitsView, usedView } from '../run/budget.js';
import { outageRetryAt } from '../run/outage.js';
import { decideRunRetry } from './run-retry.js';
import { addSpend, fromStored, reconcileSpend, toStored } from './spend.js';
import { raise, type Effect, type ItemDraft } from './effects.js';

/**
 * What a run's outcome means for the files (docs/architecture.md, "From file
 * to done"), pure: done, dead letter, an outbox item, a handoff, a retry later,
 * and the history line. Facts in, the task's new checkpoint and the effects
 * out, in the order they are written, so a crash between two of them is
 * settled on the next claim.
 */

export interface OutcomeFacts {
  agent: AgentDefinition;
  task: Task;
  /** The checkpoint as the run left it. */
  checkpoint: TaskCheckpoint;
  runId: string;
  trigger: RunTrigger;
  startedAt: number;
  report: RunReport;
  limits: BudgetLimits;
  definitionChanged: boolean;
  /** The task's spend before this run (journal, floored by the checkpoint). */
  spentBefore: JournalSpend;
  now: number;
  /** The agent's spend today (UTC), this run included; needed only when the run stopped at daily_cost_usd. */
  spentTodayUsd: number | null;
  /** When the circuit of report.outageModel lets a probe through; null when it does now. */
  outageReadyAt: number | null;
  random: () => number;
}

export type RunError = Failure & { stderr_tail?: string[] };

export interface OutcomePlan {
  status: RunStatus;
  error: RunError | null;
  /** The task's checkpoint after the run (written by a `checkpoint` effect unless the task left). */
  checkpoint: TaskCheckpoint;
  effects: Effect[];
  history: HistoryLine;
}

type Step = Omit<OutcomePlan, 'history'>;

export function planOutcome(facts: OutcomeFacts): OutcomePlan {
  const { report, checkpoint: before } = facts;
  const closed: TaskCheckpoint = {
    ...before,
    active_run: null,
    runtime_ms: before.runtime_ms + report.runtimeMs,
    spend: toStored(addSpend(facts.spentBefore, report.spend)),
  };
  const step = planStep(facts, closed);
  const effects = [...step.effects];
  if (step.status === 'done' || step.status === 'dead_letter') {
    const details = step.error ? { error: step.error } : { runs: step.checkpoint.runs.length };
    effects.push({ type: 'audit', entry: { event: step.status, agent: facts.agent.name, task_id: facts.task.id, run_id: facts.runId, details } });
  }
  return { ...step, effects, history: historyLine(facts, step.status, step.error) };
}

function planStep(facts: OutcomeFacts, checkpoint: TaskCheckpoint): Step {
  const { outcome } = facts.report;
  const iso = new Date(facts.now).toISOString();
  switch (outcome.kind) {
    case 'done': {
      const record = { v: 1 as const, task: facts.task, status: 'done' as const, output: outcome.output, finished_at: iso, runs: checkpoint.runs };
      return { status: 'done', error: null, checkpoint, effects: [{ type: 'complete', record }] };
    }
    case 'escalated': {
      const m = outcome.message;
      const next = m.state !== undefined ? { ...checkpoint, state: m.state, checkpoint_at: iso, checkpoint_seq: facts.report.seq } : checkpoint;
      const item = draft(facts, 'uncertain', m.reason, { question: m.question, blockers: m.blockers, details: { state: m.state ?? next.state } });
      return escalated(next, item);
    }
    case 'limit':
    case 'interrupted':
      return planStopped(facts, checkpoint, outcome);
    case 'provider_unavailable': {
      const error = failureOf('provider_error', outcome.message, 'provider_unavailable');
      const item = draft(facts, 'provider_unavailable', `model ${outcome.model} unavailable and the task is critical: ${outcome.message}`, { question: 'Retry when the provider is back (retry), or cancel?' });
      return { ...escalated(checkpoint, item), error };
    }
    case 'approval':
      return escalated(checkpoint, approvalItem(facts, outcome));
    case 'unsure_side_effect':
      return escalated(
        checkpoint,
        draft(facts, 'unsure_side_effect', `the daemon stopped during ${outcome.tool} (call ${outcome.seq}), which has side effects: it may or may not have happened`, {
          question: 'Did this call happen? approve = it happened, treat it as done; retry = run it again; cancel = drop the task',
          details: { seq: outcome.seq, tool: outcome.tool, args: outcome.args, idempotency_key: outcome.idempotencyKey },
        }),
      );
    case 'failed':
      return planFailed(facts, checkpoint, outcome);
  }
}

/** The checkpoint is written, then the item that asks a person. */
function escalated(checkpoint: TaskCheckpoint, item: ItemDraft): Step {
  return { status: 'escalated', error: null, checkpoint, effects: [{ type: 'checkpoint', checkpoint }, raiseFromRun(item)] };
}

function raiseFromRun(item: ItemDraft): Effect {
  return raise(item, { msg: 'escalated to the outbox', fields: { task_id: item.task_id, run_id: item.run_id, kind: item.kind } });
}

function draft(facts: OutcomeFacts, kind: ItemDraft['kind'], reason: string, extra: { question?: string; blockers?: unknown[]; details?: unknown }): ItemDraft {
  return {
    kind,
    agent: facts.agent.name,
    task_id: facts.task.id,
    run_id: facts.runId,
    created_at: new Date(facts.now).toISOString(),
    reason,
    ...(extra.question !== undefined ? { question: extra.question } : {}),
    ...(extra.blockers !== undefined ? { blockers: extra.blockers } : {}),
    ...(extra.details !== undefined ? { details: extra.details } : {}),
  };
}

type Outcome<K extends string> = Extract<RunReport['outcome'], { kind: K }>;

/** A budget or a shutdown stopped the run: the handoff (and, at a budget, a limit item) for whoever goes on. */
function planStopped(facts: OutcomeFacts, closed: TaskCheckpoint, outcome: Outcome<'limit' | 'interrupted'>): Step {
  const { report } = facts;
  const iso = new Date(facts.now).toISOString();
  const checkpoint = outcome.handoff?.state !== undefined ? { ...closed, state: outcome.handoff.state, checkpoint_at: iso, checkpoint_seq: report.seq } : closed;
  // Budgets are per task across its runs: the journal holds every run's real spend.
  const used = usedView(taskSpent(reconcileSpend(report.journal.spend, fromStored(checkpoint.spend)).spend, checkpoint.runtime_ms));
  const shown = handoffFigures(facts, outcome.reason, used);
  const handoff = {
    v: 1,
    agent: facts.agent.name,
    task_id: facts.task.id,
    run_id: facts.runId,
    reason: outcome.reason,
    at: iso,
    used: shown.used,
    limits: shown.limits,
    summary: outcome.handoff?.summary ?? null,
    next_steps: outcome.handoff?.next_steps ?? [],
    checkpoint: checkpoint.state,
    journal_tail: report.journal.tail,
  };
  const effects: Effect[] = [{ type: 'checkpoint', checkpoint }, { type: 'handoff', handoff }];
  if (outcome.kind === 'interrupted') return { status: 'interrupted', error: null, checkpoint, effects };
  const question =
    outcome.reason === 'daily_cost'
      ? `The agent's daily_cost_usd ($${facts.limits.dailyCostUsd}) is spent: continue after the UTC day ends (or raise daily_cost_usd), or cancel?`
      : 'Continue (optionally with --extend), or cancel?';
  effects.push(raiseFromRun(draft(facts, 'limit', `budget reached: ${outcome.reason}`, { question, details: shown })));
  return { status: 'limit', error: failureOf('budget', `budget reached: ${outcome.reason}`), checkpoint, effects };
}

/**
 * Used against limits, as the handoff and the limit item show them. A stop by
 * the daily cap shows that cap and today's spend (this run included), not the
 * task's max_cost_usd, which was not what stopped it.
 */
function handoffFigures(facts: OutcomeFacts, reason: string, used: BudgetUsed): { used: BudgetUsed & { daily_cost_usd?: number }; limits: BudgetUsed & { daily_cost_usd?: number } } {
  const limits = limitsView(facts.limits);
  if (reason !== 'daily_cost') return { used, limits };
  return { used: { ...used, daily_cost_usd: facts.spentTodayUsd ?? 0 }, limits: { ...limits, daily_cost_usd: facts.limits.dailyCostUsd } };
}

/** What a task spent across all its runs, as budget.ts counts it. */
function taskSpent(spend: JournalSpend, runtimeMs: number) {
  return { steps: spend.steps, toolCalls: spend.toolCalls, tokens: spend.inputTokens + spend.outputTokens, costUsd: spend.costUsd, runtimeMs, dailyCostUsd: 0 };
}

function approvalItem(facts: OutcomeFacts, outcome: Outcome<'approval'>): ItemDraft {
  const why =
    outcome.cause === 'suspected_injection'
      ? `${outcome.tool} needs approval before it runs: content that looks like an injected instruction entered this task (see its suspected_injection item)`
      : `${outcome.tool} needs approval before it runs`;
  // An earlier approval that expired is named, so the person sees why they are asked again.
  const reason = outcome.expired ? `${why}; the earlier approval (${new Date(outcome.expired.at).toISOString()}) is older than approval_ttl` : why;
  return draft(facts, 'approval', reason, {
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
}

/** A failed run: an outage waits for its model; otherwise a retry later, or the dead letter. */
function planFailed(facts: OutcomeFacts, closed: TaskCheckpoint, outcome: Outcome<'failed'>): Step {
  const { agent, report } = facts;
  const error: RunError = { ...failureOf(outcome.category, outcome.message), ...(outcome.stderrTail ? { stderr_tail: outcome.stderrTail } : {}) };
  if (report.outageModel) {
    // Not the task's fault: no attempt counted, no dead letter; it waits for the model (run/outage.ts).
    const retryAt = outageRetryAt(facts.outageReadyAt, facts.now, agent.retry.baseDelayMs);
    const checkpoint = { ...closed, last_error: error, next_attempt_at: new Date(retryAt).toISOString() };
    const log = { level: 'warn' as const, msg: 'model unavailable; the task waits for it, no attempt counted', fields: { task_id: facts.task.id, run_id: facts.runId, model: report.outageModel } };
    return { status: 'failed', error, checkpoint, effects: [{ type: 'checkpoint', checkpoint }, { type: 'log', line: log }] };
  }
  const retryable = outcome.retry === false ? false : undefined;
  const decision = decideRunRetry(outcome.category, closed.attempts, { maxAttempts: agent.maxAttempts, ...agent.retry }, facts.random, retryable);
  const counted = { ...closed, attempts: decision.attempts, last_error: error };
  if (decision.kind === 'dead_letter') {
    const record = { v: 1 as const, agent: agent.name, task: facts.task, error, attempts: decision.attempts, runs: counted.runs, source: 'current' as const, dead_lettered_at: new Date(facts.now).toISOString() };
    return { status: 'dead_letter', error, checkpoint: counted, effects: [{ type: 'dead_letter', record }] };
  }
  const checkpoint = { ...counted, next_attempt_at: new Date(facts.now + decision.delayMs).toISOString() };
  return { status: 'failed', error, checkpoint, effects: [{ type: 'checkpoint', checkpoint }] };
}

function historyLine(facts: OutcomeFacts, status: RunStatus, error: { category: string; message: string } | null): HistoryLine {
  const { report, agent } = facts;
  const spend = report.spend;
  return {
    v: 1,
    run_id: facts.runId,
    task_id: facts.task.id,
    agent: agent.name,
    trigger: facts.trigger,
    started_at: new Date(facts.startedAt).toISOString(),
    ended_at: new Date(facts.now).toISOString(),
    duration_ms: report.runtimeMs,
    status,
    steps: spend.steps,
    tool_calls: spend.toolCalls,
    tokens: { input: spend.inputTokens, output: spend.outputTokens },
    cost_usd: spend.costUsd,
    error_category: error?.category ?? null,
    error: error?.message ?? null,
    models: report.models,
    agent_version: agent.version,
    definition_hash: agent.hash,
    definition_changed: facts.definitionChanged,
    degraded: report.degraded,
    model_latency_ms: report.modelLatencyMs,
  };
}
