import fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentDefinition, DaemonConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { formatDuration } from '../config/duration.js';
import type { HomePaths } from '../store/paths.js';
import { readIfExists } from '../store/durable.js';
import { newCheckpoint, readCheckpoint, writeCheckpoint, type RunTrigger, type TaskCheckpoint } from '../store/checkpoint.js';
import { readJournal } from '../store/journal.js';
import { tryLockAgent } from '../store/lock.js';
import { LeaseLostError } from '../store/lease.js';
import { killOrphanGroups, registerGroup, unregisterGroup } from '../store/process-registry.js';
import { hostId } from '../store/host.js';
import { addOutboxItem, markDelivered, newItemId, readOutbox, type OutboxItem, type OutboxKind } from '../store/outbox.js';
import { readDailySpend } from '../store/spend.js';
import { quietPeriodMs } from '../store/quiet-period.js';
import { promoteNext, settleCurrentTask, type Task } from '../store/tasks.js';
import type { AuditEntry } from '../observe/audit.js';
import type { InboxIndex } from '../store/inbox-index.js';
import type { WarmPool } from './warm-pool.js';
import { killGroup } from './agent-process.js';
import { isStale, toDelivered, viewOutbox } from './boot.js';
import { taskLimits, type PriceRate } from './budget.js';
import type { Clock } from './clock.js';
import { readContext, runContextRefresh, writeContext } from './context.js';
import { applyOutcome, cancelTask, recordInterruptedRun } from './finish.js';
import { hostRun, type ModelCaller, type RunOutcome, type ToolCaller } from './run-host.js';
import type { LiveRuns } from './live-runs.js';
import { closeRunTrace, openRunTrace } from './run-trace.js';
import { reportSuspectedInjection } from './injection-report.js';
import { withAgentRetry } from './agent-models.js';
import { RunDailyAlert } from './daily-alert.js';
import type { RunEndpoint } from '../endpoint/server.js';
import { addSpend, spendSoFar, toStored } from './spend-floor.js';
import { gateModels, type ModelGate } from './outage.js';
import { dropParkedCopy, parkCurrent, settleParkedCopy, shouldPark, takeParked } from '../store/waiting.js';

/**
 * One claim of one agent: lock it, settle and pick its task, run the boot
 * checks in the order docs/architecture.md ("From file to done") gives, host
 * the run, record the outcome, unlock. The daemon and `agentd run` both call this.
 */

export interface RunnerDeps {
  paths: HomePaths;
  config: DaemonConfig;
  log: Logger;
  clock: Clock;
  random: () => number;
  models: ModelCaller;
  tools: ToolCaller;
  priceOf(model: string): PriceRate | null;
  /** Aborted (reason 'shutdown' or 'lock_lost') to stop a run in progress. */
  interrupt: AbortSignal;
  /** Appends to the audit trail (state/audit.jsonl). */
  audit(entry: AuditEntry): Promise<void>;
  /**
   * The agent's definition as it is now (the daemon's registry). Read once the
   * task is picked, so a reload during the boot of a claim is not missed.
   */
  currentDefinition?: (agent: string) => AgentDefinition | undefined;
  /** The daemon's runs in progress, with live counters (status snapshot, /metrics). */
  live?: LiveRuns;
  /** Models whose half-open probe a claim of this daemon holds (run/outage.ts); none when absent. */
  probes?: Set<string>;
  /** Set by claimAndRun: throws LeaseLostError once the agent's lock is no longer this daemon's. */
  fence?: () => Promise<void>;
  /** The OpenAI-compatible endpoint every run's process is given (README "Bring your own agent"). */
  endpoint?: RunEndpoint;
  /** The daemon's inbox index (store/inbox-index.ts): promotion without reading every inbox file. */
  inbox?: InboxIndex;
  /** The daemon's warm agent processes (run/warm-pool.ts). */
  warm?: WarmPool;
}

export type ClaimResult =
  | { kind: 'locked' }
  | { kind: 'idle' }
  /** `parked`: the task left the queue to wait (store/waiting.ts), so the agent's next task can be claimed at once. */
  | { kind: 'blocked'; itemId: string | null; reason: string; parked?: boolean }
  | { kind: 'waiting'; untilMs: number }
  | { kind: 'settled' }
  | { kind: 'ran'; taskId: string; runId: string; outcome: RunOutcome };

export function newRunId(now: Date): string {
  return `r-${now.toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}-${randomBytes(4).toString('hex')}`;
}

export async function claimAndRun(deps: RunnerDeps, agent: AgentDefinition, requestedTrigger?: RunTrigger): Promise<ClaimResult> {
  const lock = await tryLockAgent(deps.paths, agent.name, deps.config.lockStaleMs);
  if (!lock) {
    deps.log.debug('agent locked by another process');
    return { kind: 'locked' };
  }
  // One signal for this claim: the daemon's shutdown or this lock's loss. Listeners
  // are removed afterwards (AbortSignal.any would keep one per claim alive on the daemon's signal).
  const interrupt = new AbortController();
  const onShutdown = () => interrupt.abort('shutdown');
  const onLockLost = () => interrupt.abort('lock_lost');
  if (deps.interrupt.aborted) onShutdown();
  deps.interrupt.addEventListener('abort', onShutdown, { once: true });
  lock.lost.addEventListener('abort', onLockLost, { once: true });
  const fence = async () => {
    if (await lock.held()) return;
    interrupt.abort('lock_lost');
    throw new LeaseLostError(agent.name);
  };
  let probe: string | null = null;
  try {
    // Before anything is settled: what a daemon killed here left running must not act again.
    await killOrphanGroups(deps.paths, agent.name, deps.log);
    const gate = admitModels(deps, agent);
    if (gate.kind === 'wait') return { kind: 'waiting', untilMs: gate.untilMs }; // a model outage: the work waits, nothing is spent
    probe = gate.probe;
    if (probe) deps.probes?.add(probe);
    return await claimLocked({ ...deps, interrupt: interrupt.signal, fence }, agent, requestedTrigger);
  } catch (err) {
    if (!(err instanceof LeaseLostError)) throw err;
    deps.log.warn({ run_id: err.runId }, 'lease lost; the run is abandoned');
    return { kind: 'locked' }; // another daemon owns the agent now
  } finally {
    if (probe) deps.probes?.delete(probe);
    deps.interrupt.removeEventListener('abort', onShutdown);
    lock.lost.removeEventListener('abort', onLockLost);
    await lock.release();
  }
}

/** Whether the agent's models can take a call now (run/outage.ts). */
function admitModels(deps: RunnerDeps, agent: AgentDefinition): ModelGate {
  const { models, probes } = deps;
  if (!models.circuitReadyAt || !models.circuitState) return { kind: 'go', probe: null };
  const chain = [agent.model, ...agent.fallbackModels].filter((m): m is string => typeof m === 'string');
  const view = { state: (m: string) => models.circuitState!(m), readyAt: (m: string) => models.circuitReadyAt!(m), probing: (m: string) => probes?.has(m) ?? false };
  return gateModels(chain, view, deps.clock.now(), OUTAGE_POLL_MS);
}

/** How often a claim looks again while another claim's half-open probe is out. */
const OUTAGE_POLL_MS = 250;

async function claimLocked(deps: RunnerDeps, claimedAs: AgentDefinition, requestedTrigger?: RunTrigger): Promise<ClaimResult> {
  const { paths, clock } = deps;
  const now = () => new Date(clock.now());
  let trigger: RunTrigger = requestedTrigger ?? 'file';

  // 2. The task: current-task.json, else the next one from the inbox.
  let current = await settleCurrentTask(paths, claimedAs.name, now(), deps.config.maxFileBytes);
  if (current.kind === 'settling') return { kind: 'waiting', untilMs: current.untilMs };
  if (current.kind === 'dead_lettered') {
    deps.log.warn({ task_id: current.id, problems: current.problems }, 'malformed current-task.json dead-lettered');
    return { kind: 'settled' };
  }
  // A parked task whose person has answered comes back ahead of the inbox (store/waiting.ts).
  if (current.kind === 'none') current = (await takeParked(paths, claimedAs.name)) ?? current;
  if (current.kind === 'none') {
    const promoted = await promoteNext(paths, claimedAs.name, now(), deps.config.maxFileBytes, deps.inbox);
    if (promoted.kind === 'dead_lettered') {
      deps.log.warn({ task_ids: promoted.ids }, 'malformed inbox tasks dead-lettered');
      return { kind: 'settled' };
    }
    if (promoted.kind === 'settling') return { kind: 'waiting', untilMs: promoted.untilMs };
    if (promoted.kind === 'refused') {
      deps.log.error({ problem: promoted.problem }, 'inbox refused');
      return { kind: 'blocked', itemId: null, reason: promoted.problem };
    }
    if (promoted.kind === 'empty') return { kind: 'idle' };
    if (promoted.deadLettered.length > 0) deps.log.warn({ task_ids: promoted.deadLettered }, 'malformed inbox tasks dead-lettered');
    current = { kind: 'task', task: promoted.task, bytes: promoted.bytes };
    trigger = requestedTrigger ?? (promoted.task.metadata?.trigger === 'cron' ? 'cron' : 'inbox'); // a schedule's task (daemon/schedules.ts)
  }
  const { task, bytes: claimed } = current;
  const agent = deps.currentDefinition?.(claimedAs.name) ?? claimedAs;
  const log = deps.log.child({ task_id: task.id });
  await settleParkedCopy(paths, agent.name, task, claimed);

  let checkpoint = (await readCheckpoint(paths, agent.name, task.id)) ?? newCheckpoint(task.id);
  if (checkpoint.active_run) {
    // The daemon died during that run: record it, kill an orphan left on this host, resume.
    const orphan = checkpoint.active_run;
    if (orphan.pid && orphan.host === hostId() && orphan.daemon_pid !== process.pid) killGroup(orphan.pid, 'SIGKILL');
    checkpoint = await recordInterruptedRun(paths, agent, task, checkpoint, now());
  }
  if (checkpoint.runs.length > 0) trigger = requestedTrigger === 'cli' ? 'cli' : 'resume';
  if (checkpoint.next_attempt_at && Date.parse(checkpoint.next_attempt_at) > clock.now()) {
    return { kind: 'waiting', untilMs: Date.parse(checkpoint.next_attempt_at) };
  }

  // 4 (read first, so a person's answer to 2 and 3 counts). Open items hold the task back.
  let items: OutboxItem[];
  try {
    items = (await readOutbox(paths, agent.name)).items;
  } catch (err) {
    const reason = err instanceof ConfigError ? err.message : `outbox unreadable: ${(err as Error).message}`;
    // A person's editor may be half-way through writing it: look again once it has been still a moment.
    const mtimeMs = (await fs.stat(paths.outboxFile(agent.name)).catch(() => null))?.mtimeMs ?? 0;
    if (clock.now() - mtimeMs < quietPeriodMs()) return { kind: 'waiting', untilMs: mtimeMs + quietPeriodMs() };
    log.error({ problem: reason }, 'outbox.json is broken; the task waits until it is fixed');
    return { kind: 'blocked', itemId: null, reason };
  }
  const outbox = viewOutbox(items, task.id);
  if (!outbox.cancel && outbox.blocking && (await parkIfWaiting(deps, agent, task, claimed, true))) return { kind: 'blocked', itemId: outbox.blocking.id, reason: outbox.blocking.reason, parked: true };
  await dropParkedCopy(paths, agent.name, task, claimed);
  if (outbox.cancel) {
    await cancelTask(deps, agent, task, claimed, checkpoint, outbox.cancel);
    return { kind: 'settled' };
  }
  if (outbox.blocking) {
    log.debug({ item_id: outbox.blocking.id, kind: outbox.blocking.kind }, 'task waits for an open outbox item');
    return { kind: 'blocked', itemId: outbox.blocking.id, reason: outbox.blocking.reason };
  }

  // 2. Task age, before its first run only: a task a person just answered is not stale.
  if (checkpoint.runs.length === 0 && !outbox.staleTaskAccepted && isStale(task.created_at, agent.freshness.taskMaxAgeMs, clock.now())) {
    return escalateBoot(deps, agent, task, claimed, 'stale_task', `task created at ${task.created_at} is older than task_max_age (${formatDuration(agent.freshness.taskMaxAgeMs)})`, 'Run it anyway (continue) or drop it (cancel)?');
  }

  // 3. Context age, refreshed once when the definition says how.
  const agentdEnv = { AGENTD_AGENT: agent.name, AGENTD_TASK_ID: task.id, AGENTD_HOME: paths.root };
  let context = await readContext(paths, agent.name);
  const contextStale = () => context.kind === 'broken' || (context.kind === 'ok' && isStale(context.updatedAt, agent.freshness.contextMaxAgeMs, clock.now()));
  if (!outbox.staleContextAccepted && contextStale()) {
    if (agent.freshness.contextRefresh) {
      const refreshed = await runContextRefresh(agent.freshness.contextRefresh, agent.dir, agent.env, agentdEnv, agent.budget.runtimeMs, log, agent.confinement);
      if (!refreshed) log.warn('context_refresh failed');
      context = await readContext(paths, agent.name);
    }
    if (contextStale()) {
      const reason = context.kind === 'broken' ? context.problem : `context-snapshot.json updated at ${context.kind === 'ok' ? context.updatedAt : '?'} is older than context_max_age`;
      return escalateBoot(deps, agent, task, claimed, 'stale_context', reason, 'Run with this context anyway (continue), refresh it and retry (retry), or drop the task (cancel)?');
    }
  }

  // 5. The run in progress resumes from checkpoint.json and the journal.
  const runId = newRunId(now());
  const journalFile = paths.journal(agent.name, task.id);
  const journal = await readJournal(journalFile);
  const spent = await spendSoFar({ ...deps, log }, agent.name, task.id, journal.spend, checkpoint.spend);
  const limits = taskLimits(agent.budget, task.budget, outbox.extends, deps.config.limits);
  const dailyCostUsd = await readDailySpend(paths, agent.name, now());
  const handoff = await readHandoffFor(paths, agent.name, task.id);
  const definitionChanged = checkpoint.definition_hash !== null && checkpoint.definition_hash !== agent.hash;
  if (definitionChanged) log.warn({ previous: checkpoint.definition_hash, current: agent.hash }, 'task resumes under a changed agent definition');

  checkpoint = {
    ...checkpoint,
    runs: [...checkpoint.runs, runId],
    active_run: { run_id: runId, trigger, started_at: now().toISOString(), pid: null, host: hostId(), daemon_pid: process.pid },
    next_attempt_at: null,
    agent_version: agent.version,
    definition_hash: agent.hash,
    spend: toStored(spent),
  };
  await writeCheckpoint(paths, agent.name, checkpoint);
  const runLog = log.child({ run_id: runId });
  runLog.info({ trigger, attempt: checkpoint.attempts + 1 }, 'run started');
  const trace = openRunTrace({ paths, config: deps.config, clock, log: runLog, agent, taskId: task.id, runId, trigger, attempt: checkpoint.attempts + 1, definitionChanged, resolutions: outbox.undelivered });

  const startedAt = now();
  const dailyAlert = new RunDailyAlert(deps, agent, dailyCostUsd);
  const report = await hostRun({
    agent,
    taskId: task.id,
    runId,
    start: {
      task: task as unknown as Record<string, unknown>,
      context: context.kind === 'ok' ? context.context : null,
      resume: { checkpoint: checkpoint.state, handoff, resolutions: outbox.undelivered.map(toDelivered) },
    },
    limits,
    spentBefore: {
      steps: spent.steps,
      toolCalls: spent.toolCalls,
      tokens: spent.inputTokens + spent.outputTokens,
      costUsd: spent.costUsd,
      runtimeMs: checkpoint.runtime_ms,
      dailyCostUsd,
    },
    replay: journal.effective,
    journalFile,
    takeWarm: deps.warm ? () => deps.warm!.take(agent) : undefined,
    sideEffectDecisions: outbox.sideEffectDecisions,
    approvals: outbox.approvals,
    tainted: outbox.suspectedInjection,
    onSuspectedInjection: (found) => reportSuspectedInjection({ ...deps, log: runLog }, agent, task.id, runId, found),
    audit: deps.audit,
    agentdEnv: { ...agentdEnv, AGENTD_RUN_ID: runId },
    models: withAgentRetry(deps.models, agent.retry),
    onSpend: (spent) => dailyAlert.spent(spent.dailyCostUsd),
    tools: deps.tools,
    priceOf: deps.priceOf,
    clock,
    log: runLog,
    trace,
    interrupt: deps.interrupt,
    live: deps.live,
    fence: deps.fence,
    endpoint: deps.endpoint,
    onSpawn: async (pid) => {
      await deps.fence?.();
      if (pid) await registerGroup(paths, agent.name, pid, 'agent', runId);
      checkpoint = { ...checkpoint, active_run: { ...checkpoint.active_run!, pid } };
      await writeCheckpoint(paths, agent.name, checkpoint);
      await markDelivered(paths, agent.name, outbox.undelivered.map((i) => i.id), now().toISOString());
      // Audited once the agent has its start message: the claim's disk work stays off the pick-up path.
      await deps.audit({ event: 'claim', agent: agent.name, task_id: task.id, run_id: runId, details: { trigger, attempt: checkpoint.attempts + 1, definition_hash: agent.hash } });
      for (const item of outbox.undelivered) {
        await deps.audit({ event: item.kind === 'approval' ? 'approval' : 'resolution', agent: agent.name, task_id: task.id, run_id: runId, by: item.resolution!.by ?? 'unknown', details: { item_id: item.id, kind: item.kind, decision: item.resolution!.decision } });
      }
    },
    checkpointSeq: checkpoint.checkpoint_seq,
    resumedFromCheckpoint: checkpoint.state !== null,
    onCheckpoint: async (state, ctx, hasContext, seq, runSpend) => {
      await deps.fence?.();
      checkpoint = { ...checkpoint, state, checkpoint_at: now().toISOString(), checkpoint_seq: seq, spend: toStored(addSpend(spent, runSpend)) };
      await writeCheckpoint(paths, agent.name, checkpoint);
      if (hasContext) await writeContext(paths, agent.name, ctx, now());
    },
  });
  const agentPid = checkpoint.active_run?.pid;
  if (agentPid) await unregisterGroup(paths, agent.name, agentPid); // the host killed the group when the run ended
  await dailyAlert.settled();
  const ended = { outcome: report.outcome.kind, steps: report.spend.steps, cost_usd: report.spend.costUsd };
  if (report.outcome.kind === 'interrupted' && report.outcome.reason === 'lock_lost') {
    runLog.warn(ended, 'lease lost; the run is abandoned');
    return { kind: 'ran', taskId: task.id, runId, outcome: report.outcome }; // another daemon owns the task now: nothing more is written
  }
  await deps.fence?.().catch((err: unknown) => {
    throw err instanceof LeaseLostError ? err.during(runId) : err;
  });
  await applyOutcome(deps, { agent, task, claimed, checkpoint, runId, trigger, startedAt, report, limits, definitionChanged, spentBefore: spent });
  await closeRunTrace(trace, report);
  // Logged once the outcome is in the files, so whoever waits for this line can read them.
  runLog.info(ended, 'run ended');
  return { kind: 'ran', taskId: task.id, runId, outcome: report.outcome };
}

async function escalateBoot(deps: RunnerDeps, agent: AgentDefinition, task: Task, claimed: Buffer, kind: OutboxKind, reason: string, question: string): Promise<ClaimResult> {
  const item = await addOutboxItem(deps.paths, {
    id: newItemId(agent.name),
    kind,
    agent: agent.name,
    task_id: task.id,
    run_id: null,
    created_at: new Date(deps.clock.now()).toISOString(),
    reason,
    question,
    status: 'open',
  });
  await deps.audit({ event: 'escalation', agent: agent.name, task_id: task.id, details: { item_id: item.id, kind, reason } });
  deps.log.warn({ task_id: task.id, item_id: item.id, kind }, 'task escalated before it ran');
  return { kind: 'blocked', itemId: item.id, reason, parked: await parkIfWaiting(deps, agent, task, claimed, true) };
}

/** `while_waiting: park`: a task waiting on a person leaves the queue, so the next one can run (README "Tasks"). */
async function parkIfWaiting(deps: RunnerDeps, agent: AgentDefinition, task: Task, claimed: Buffer, waitsOnPerson: boolean): Promise<boolean> {
  if (!shouldPark(agent.whileWaiting, waitsOnPerson)) return false;
  const parked = await parkCurrent(deps.paths, agent.name, task, claimed);
  if (parked) deps.log.info({ task_id: task.id }, 'task parked while it waits on a person');
  else deps.log.warn({ task_id: task.id }, 'task not parked: another file holds its id in waiting/; it blocks');
  return parked;
}

async function readHandoffFor(paths: HomePaths, agent: string, taskId: string): Promise<unknown> {
  const bytes = await readIfExists(paths.handoffFile(agent));
  if (!bytes) return null;
  try {
    const handoff = JSON.parse(bytes.toString('utf8')) as { task_id?: string };
    return handoff.task_id === taskId ? handoff : null;
  } catch {
    return null;
  }
}

export type { TaskCheckpoint };
