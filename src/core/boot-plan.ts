import type { AgentDefinition } from '../config/types.js';
import type { ActiveRun, RunTrigger, TaskCheckpoint } from '../store/checkpoint.js';
import type { HistoryLine } from '../store/history.js';
import type { JournalSpend, JournalSummary } from '../store/journal.js';
import type { OutboxItem } from '../store/outbox.js';
import type { Task } from '../store/tasks.js';
import type { ContextSnapshot } from '../run/context.js';
import { formatDuration } from '../config/duration.js';
import { isStale, viewOutbox, type OutboxView } from '../run/boot.js';
import { raise, type Effect, type RaiseItem } from './effects.js';
import { toStored } from './spend.js';

/**
 * The boot of a claim (docs/architecture.md, "From file to done"), pure:
 * from the task, its checkpoint, the outbox, the context snapshot and a clock
 * reading, what happens next. The claim reads the facts, asks these, and
 * applies what they return (store/effects.ts).
 */

/** The trigger a run is recorded with: a task that ran before resumes, unless a person runs it by hand. */
export function runTrigger(picked: RunTrigger, requested: RunTrigger | undefined, checkpoint: TaskCheckpoint): RunTrigger {
  if (checkpoint.runs.length > 0) return requested === 'cli' ? 'cli' : 'resume';
  return picked;
}

/** Until when a failed task backs off before its next run; null when it may run now. */
export function backoffUntil(checkpoint: TaskCheckpoint, now: number): number | null {
  if (!checkpoint.next_attempt_at) return null;
  const at = Date.parse(checkpoint.next_attempt_at);
  return at > now ? at : null;
}

/** outbox.json as the claim found it. */
export type OutboxFacts =
  | { kind: 'ok'; items: OutboxItem[] }
  /** Not readable or not valid; `mtimeMs`: when it was last written (0 when unknown). */
  | { kind: 'unreadable'; reason: string; mtimeMs: number; quietMs: number };

export interface AdmissionFacts {
  agent: AgentDefinition;
  task: Task;
  checkpoint: TaskCheckpoint;
  outbox: OutboxFacts;
  now: number;
}

export type Admission =
  /** outbox.json is being written (a person's editor): look again once it has been still a moment. */
  | { kind: 'wait'; untilMs: number }
  /** outbox.json is broken: the task waits until it is fixed. */
  | { kind: 'broken'; reason: string; effects: Effect[] }
  /** An open item holds the task back; it waits on a person (and may be parked). */
  | { kind: 'held'; item: OutboxItem }
  /** A person said cancel. */
  | { kind: 'cancel'; effects: Effect[] }
  /** The task is too old to run before a person says so. */
  | { kind: 'escalate'; raise: RaiseItem }
  | { kind: 'go'; outbox: OutboxView };

/** Steps 2 and 4 of the boot: what the outbox and the task's age allow. */
export function planAdmission(facts: AdmissionFacts): Admission {
  const { outbox: read, task, agent, checkpoint, now } = facts;
  if (read.kind === 'unreadable') {
    if (now - read.mtimeMs < read.quietMs) return { kind: 'wait', untilMs: read.mtimeMs + read.quietMs };
    const log = { level: 'error' as const, msg: 'outbox.json is broken; the task waits until it is fixed', fields: { problem: read.reason } };
    return { kind: 'broken', reason: read.reason, effects: [{ type: 'log', line: log }] };
  }
  const outbox = viewOutbox(read.items, task.id);
  if (outbox.cancel) return { kind: 'cancel', effects: planCancel(agent.name, task, checkpoint, outbox.cancel, now) };
  if (outbox.blocking) return { kind: 'held', item: outbox.blocking };
  // Before its first run only: a task a person just answered is not stale.
  if (checkpoint.runs.length === 0 && !outbox.staleTaskAccepted && isStale(task.created_at, agent.freshness.taskMaxAgeMs, now)) {
    const reason = `task created at ${task.created_at} is older than task_max_age (${formatDuration(agent.freshness.taskMaxAgeMs)})`;
    return { kind: 'escalate', raise: bootItem(agent, task, now, 'stale_task', reason, 'Run it anyway (continue) or drop it (cancel)?') };
  }
  return { kind: 'go', outbox };
}

/** A person said cancel: the resolution is delivered, the task goes to done as cancelled. */
export function planCancel(agent: string, task: Task, checkpoint: TaskCheckpoint, item: OutboxItem, now: number): Effect[] {
  const at = new Date(now).toISOString();
  const by = item.resolution?.by ?? null;
  return [
    { type: 'deliver', itemIds: [item.id], at },
    { type: 'complete', record: { v: 1, task, status: 'cancelled', output: { cancelled_by: by, item_id: item.id, reason: item.reason }, finished_at: at, runs: checkpoint.runs } },
    { type: 'audit', entry: { event: 'cancel', agent, task_id: task.id, by: by ?? 'unknown', details: { item_id: item.id } } },
    { type: 'log', line: { level: 'info', msg: 'task cancelled by a person', fields: { task_id: task.id, item_id: item.id } } },
  ];
}

export interface ContextFacts {
  agent: AgentDefinition;
  task: Task;
  context: ContextSnapshot;
  /** A person let the task run with this context (a resolved stale_context item). */
  accepted: boolean;
  /** context_refresh already ran in this claim. */
  refreshed: boolean;
  now: number;
}

export type ContextDecision = { kind: 'go' } | { kind: 'refresh' } | { kind: 'escalate'; raise: RaiseItem };

/** Step 3 of the boot: the context's age, refreshed once when the definition says how. */
export function planContext(facts: ContextFacts): ContextDecision {
  const { context, agent, now } = facts;
  const stale = context.kind === 'broken' || (context.kind === 'ok' && isStale(context.updatedAt, agent.freshness.contextMaxAgeMs, now));
  if (facts.accepted || !stale) return { kind: 'go' };
  if (agent.freshness.contextRefresh && !facts.refreshed) return { kind: 'refresh' };
  const reason = context.kind === 'broken' ? context.problem : `context-snapshot.json updated at ${context.kind === 'ok' ? context.updatedAt : '?'} is older than context_max_age`;
  return { kind: 'escalate', raise: bootItem(agent, facts.task, now, 'stale_context', reason, 'Run with this context anyway (continue), refresh it and retry (retry), or drop the task (cancel)?') };
}

function bootItem(agent: AgentDefinition, task: Task, now: number, kind: 'stale_task' | 'stale_context', reason: string, question: string): RaiseItem {
  const item = { kind, agent: agent.name, task_id: task.id, run_id: null, created_at: new Date(now).toISOString(), reason, question };
  return raise(item, { msg: 'task escalated before it ran', fields: { task_id: task.id, kind } });
}

/** The checkpoint as a run starts: the run is active, the backoff is over, the definition and the spend floor are recorded. */
export function startCheckpoint(checkpoint: TaskCheckpoint, agent: AgentDefinition, activeRun: ActiveRun, spent: JournalSpend): TaskCheckpoint {
  return {
    ...checkpoint,
    runs: [...checkpoint.runs, activeRun.run_id],
    active_run: activeRun,
    next_attempt_at: null,
    agent_version: agent.version,
    definition_hash: agent.hash,
    spend: toStored(spent),
  };
}

/**
 * The daemon died during a run: its history line from the journal (what it
 * really spent) and the checkpoint with it closed. Its wall time up to its
 * last journal record counts toward max_runtime.
 */
export function planInterruptedRun(
  checkpoint: TaskCheckpoint,
  journal: Pick<JournalSummary, 'spendByRun' | 'tail'>,
  agent: AgentDefinition,
  task: Task,
  now: number,
): { checkpoint: TaskCheckpoint; history: HistoryLine; costUsd: number } {
  const active = checkpoint.active_run!;
  const spend = journal.spendByRun.get(active.run_id) ?? { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  const lastAt = [...journal.tail].reverse().find((r) => r.run_id === active.run_id)?.at;
  const runtimeMs = lastAt ? Math.max(0, Date.parse(lastAt) - Date.parse(active.started_at)) : 0;
  const history: HistoryLine = {
    v: 1,
    run_id: active.run_id,
    task_id: task.id,
    agent: agent.name,
    trigger: active.trigger,
    started_at: active.started_at,
    ended_at: new Date(now).toISOString(),
    duration_ms: runtimeMs,
    status: 'interrupted',
    steps: spend.steps,
    tool_calls: spend.toolCalls,
    tokens: { input: spend.inputTokens, output: spend.outputTokens },
    cost_usd: spend.costUsd,
    error_category: 'crash',
    error: 'the daemon stopped during the run',
    models: [],
    agent_version: checkpoint.agent_version ?? agent.version,
    definition_hash: checkpoint.definition_hash ?? agent.hash,
    definition_changed: false,
    degraded: false,
  };
  return { checkpoint: { ...checkpoint, active_run: null, runtime_ms: checkpoint.runtime_ms + runtimeMs }, history, costUsd: spend.costUsd };
}

/** What a run's start records once its agent has the start message. */
export interface DeliveryFacts {
  agent: string;
  definitionHash: string;
  taskId: string;
  runId: string;
  trigger: RunTrigger;
  /** Resolutions handed to the agent in its start message. */
  delivered: OutboxItem[];
}

/** The resolutions handed over are delivered; the claim and each of them go into the audit trail. */
export function planDelivery(facts: DeliveryFacts, attempt: number, now: number): Effect[] {
  const base = { agent: facts.agent, task_id: facts.taskId, run_id: facts.runId };
  return [
    { type: 'deliver', itemIds: facts.delivered.map((i) => i.id), at: new Date(now).toISOString() },
    { type: 'audit', entry: { event: 'claim', ...base, details: { trigger: facts.trigger, attempt, definition_hash: facts.definitionHash } } },
    ...facts.delivered.map(
      (item): Effect => ({
        type: 'audit',
        entry: { event: item.kind === 'approval' ? 'approval' : 'resolution', ...base, by: item.resolution!.by ?? 'unknown', details: { item_id: item.id, kind: item.kind, decision: item.resolution!.decision } },
      }),
    ),
  ];
}
