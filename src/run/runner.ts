import fs from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentDefinition, BudgetLimits, DaemonConfig } from '../config/types.js';
import { ConfigError } from '../errors.js';
import type { HomePaths } from '../store/paths.js';
import { readIfExists } from '../store/durable.js';
import { CheckpointOwner, newCheckpoint, readCheckpoint, type RunTrigger, type TaskCheckpoint } from '../store/checkpoint.js';
import { TaskJournal, type JournalSpend } from '../store/journal.js';
import { tryLockAgent } from '../store/lock.js';
import { LeaseLostError } from '../store/lease.js';
import { openClaimRegistry, unregisterGroup, type ClaimRegistry } from '../store/process-registry.js';
import { hostId } from '../store/host.js';
import { readOutbox, type OutboxItem } from '../store/outbox.js';
import { readDailySpend } from '../store/spend.js';
import { quietPeriodMs } from '../store/quiet-period.js';
import type { Task } from '../store/tasks.js';
import { applyEffects, raiseOutboxItem, type EffectPorts } from '../store/effects.js';
import type { AuditEntry } from '../observe/audit.js';
import type { InboxIndex } from '../store/inbox-index.js';
import type { RaiseItem } from '../core/effects.js';
import { backoffUntil, planAdmission, planContext, runTrigger, startCheckpoint, type OutboxFacts } from '../core/boot-plan.js';
import type { WarmPool } from './warm-pool.js';
import { killGroup } from './agent-process.js';
import { toDelivered, type OutboxView } from './boot.js';
import { taskLimits, type PriceRate } from './budget.js';
import type { Clock } from './clock.js';
import { readContext, runContextRefresh, type ContextSnapshot } from './context.js';
import { applyOutcome, recordInterruptedRun } from './finish.js';
import { hostRun, type ModelCaller, type RunHostInput, type RunOutcome, type ToolCaller } from './run-host.js';
import type { LiveRuns } from './live-runs.js';
import { closeRunTrace, openRunTrace } from './run-trace.js';
import { reportSuspectedInjection } from './injection-report.js';
import { withAgentRetry } from './agent-models.js';
import { RunDailyAlert } from './daily-alert.js';
import type { RunEndpoint } from '../endpoint/server.js';
import { spendSoFar } from './spend-floor.js';
import { gateModels, type ModelGate } from './outage.js';
import { dropParkedCopy, parkCurrent, settleParkedCopy, shouldPark, type ParkedCopy } from '../store/waiting.js';
import { relinkSdkBeforeRun } from '../store/sdk-link.js';
import { pickTask } from './pick-task.js';
import { runRecords } from './run-records.js';

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
  let registry: ClaimRegistry | null = null;
  const onLockLost = () => {
    interrupt.abort('lock_lost');
    // Another daemon may rewrite the registry now: later records go to the file by its name.
    void registry?.close();
  };
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
    registry = await openClaimRegistry(deps.paths, agent.name, deps.log);
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
    await registry?.close();
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
  const picked = await pickTask(deps, claimedAs.name, requestedTrigger);
  if (picked.kind === 'none') return picked.result;
  const { task, bytes: claimed } = picked;
  const agent = deps.currentDefinition?.(claimedAs.name) ?? claimedAs;
  const opened = await openCheckpoint(deps, agent, task, claimed, picked.parked);
  const claim: Claim = { deps, log: deps.log.child({ task_id: task.id }), agent, task, claimed, ...opened };
  const trigger = runTrigger(picked.trigger, requestedTrigger, claim.checkpoint.current);
  const until = backoffUntil(claim.checkpoint.current, deps.clock.now());
  if (until !== null) return { kind: 'waiting', untilMs: until };
  const booted = await bootTask(claim);
  if (booted.kind !== 'go') return booted.result;
  return runTask(claim, trigger, booted);
}

/** One claimed task and what the claim holds of it. */
interface Claim {
  deps: RunnerDeps;
  /** The claim's log: every line names the task. */
  log: Logger;
  agent: AgentDefinition;
  task: Task;
  claimed: Buffer;
  checkpoint: CheckpointOwner;
  /** Whether waiting/ held a copy of the task when the claim looked (store/waiting.ts). */
  parked: ParkedCopy;
}

/** Where the claim's effects are applied (store/effects.ts). */
function effectPorts(claim: Claim, log: Logger = claim.deps.log): EffectPorts {
  const { deps } = claim;
  return { paths: deps.paths, audit: deps.audit, log, fence: deps.fence, agent: claim.agent.name, claimed: claim.claimed, checkpoint: claim.checkpoint };
}

/**
 * The task's checkpoint, in its one owner. A run the daemon died in is
 * recorded first, and an orphan it left on this host is killed.
 */
async function openCheckpoint(deps: RunnerDeps, agent: AgentDefinition, task: Task, claimed: Buffer, known?: ParkedCopy): Promise<{ checkpoint: CheckpointOwner; parked: ParkedCopy }> {
  const parked = known ?? (await settleParkedCopy(deps.paths, agent.name, task, claimed));
  const owner = new CheckpointOwner(deps.paths, agent.name, (await readCheckpoint(deps.paths, agent.name, task.id)) ?? newCheckpoint(task.id));
  const orphan = owner.current.active_run;
  if (orphan) {
    if (orphan.pid && orphan.host === hostId() && orphan.daemon_pid !== process.pid) killGroup(orphan.pid, 'SIGKILL');
    await recordInterruptedRun(deps.paths, agent, task, owner, new Date(deps.clock.now()));
  }
  return { checkpoint: owner, parked };
}

type Booted = { kind: 'stop'; result: ClaimResult } | { kind: 'go'; outbox: OutboxView; context: ContextSnapshot; agentdEnv: Record<string, string> };

/** Steps 2 to 4 of the boot: the outbox, the task's age, the context's age (core/boot-plan.ts decides). */
async function bootTask(claim: Claim): Promise<Booted> {
  const { deps, agent, task } = claim;
  const now = deps.clock.now();
  // Read first, so a person's answer to the age checks counts.
  const admission = planAdmission({ agent, task, checkpoint: claim.checkpoint.current, outbox: await outboxFacts(deps, agent.name), now });
  switch (admission.kind) {
    case 'wait':
      return stop({ kind: 'waiting', untilMs: admission.untilMs });
    case 'broken':
      await applyEffects(effectPorts(claim, claim.log), admission.effects);
      return stop({ kind: 'blocked', itemId: null, reason: admission.reason });
    case 'held':
      return stop(await holdTask(claim, admission.item));
    case 'cancel':
      await dropParkedCopy(deps.paths, agent.name, task, claim.claimed, claim.parked);
      await applyEffects(effectPorts(claim), admission.effects);
      return stop({ kind: 'settled' });
    case 'escalate':
      await dropParkedCopy(deps.paths, agent.name, task, claim.claimed, claim.parked);
      return stop(await escalateBoot(claim, admission.raise));
  }
  await dropParkedCopy(deps.paths, agent.name, task, claim.claimed, claim.parked);
  return checkContext(claim, admission.outbox);
}

function stop(result: ClaimResult): Booted {
  return { kind: 'stop', result };
}

/** An open item holds the task back: it is parked while it waits, or it blocks. */
async function holdTask(claim: Claim, item: OutboxItem): Promise<ClaimResult> {
  const { deps, agent, task, claimed } = claim;
  const reason = item.reason;
  if (await parkIfWaiting(deps, agent, task, claimed)) return { kind: 'blocked', itemId: item.id, reason, parked: true };
  await dropParkedCopy(deps.paths, agent.name, task, claimed, claim.parked);
  claim.log.debug({ item_id: item.id, kind: item.kind }, 'task waits for an open outbox item');
  return { kind: 'blocked', itemId: item.id, reason };
}

/** Step 3: the context's age, refreshed once when the definition says how. */
async function checkContext(claim: Claim, outbox: OutboxView): Promise<Booted> {
  const { deps, agent, task } = claim;
  const agentdEnv = { AGENTD_AGENT: agent.name, AGENTD_TASK_ID: task.id, AGENTD_HOME: deps.paths.root };
  let context = await readContext(deps.paths, agent.name);
  for (let refreshed = false; ; refreshed = true) {
    const decision = planContext({ agent, task, context, accepted: outbox.staleContextAccepted, refreshed, now: deps.clock.now() });
    if (decision.kind === 'go') return { kind: 'go', outbox, context, agentdEnv };
    if (decision.kind === 'escalate') return stop(await escalateBoot(claim, decision.raise));
    const ok = await runContextRefresh(agent.freshness.contextRefresh!, agent.dir, agent.env, agentdEnv, agent.budget.runtimeMs, claim.log, agent.confinement);
    if (!ok) claim.log.warn('context_refresh failed');
    context = await readContext(deps.paths, agent.name);
  }
}

/** outbox.json as the boot plan reads it: its items, or why it cannot be read and when it was last written. */
async function outboxFacts(deps: RunnerDeps, agent: string): Promise<OutboxFacts> {
  try {
    return { kind: 'ok', items: (await readOutbox(deps.paths, agent)).items };
  } catch (err) {
    const reason = err instanceof ConfigError ? err.message : `outbox unreadable: ${(err as Error).message}`;
    const mtimeMs = (await fs.stat(deps.paths.outboxFile(agent)).catch(() => null))?.mtimeMs ?? 0;
    return { kind: 'unreadable', reason, mtimeMs, quietMs: quietPeriodMs() };
  }
}

/** A run about to start: what the claim worked out for it. */
interface RunSetup {
  runId: string;
  trigger: RunTrigger;
  journal: TaskJournal;
  spent: JournalSpend;
  limits: BudgetLimits;
  dailyCostUsd: number;
  definitionChanged: boolean;
  log: Logger;
}

/** Step 5: the run resumes from checkpoint.json and the journal, recorded as active before its process starts. */
async function prepareRun(claim: Claim, trigger: RunTrigger, outbox: OutboxView): Promise<RunSetup> {
  const { deps, agent, task, checkpoint } = claim;
  const now = () => new Date(deps.clock.now());
  const runId = newRunId(now());
  const journal = await TaskJournal.open(deps.paths.journal(agent.name, task.id));
  const spent = await spendSoFar({ ...deps, log: claim.log }, agent.name, task.id, journal.totals().spend, checkpoint.current.spend);
  const limits = taskLimits(agent.budget, task.budget, outbox.extends, deps.config.limits);
  const dailyCostUsd = await readDailySpend(deps.paths, agent.name, now());
  const previous = checkpoint.current.definition_hash;
  const definitionChanged = previous !== null && previous !== agent.hash;
  if (definitionChanged) claim.log.warn({ previous, current: agent.hash }, 'task resumes under a changed agent definition');
  const active = { run_id: runId, trigger, started_at: now().toISOString(), pid: null, host: hostId(), daemon_pid: process.pid };
  await checkpoint.write(startCheckpoint(checkpoint.current, agent, active, spent));
  const log = claim.log.child({ run_id: runId });
  log.info({ trigger, attempt: checkpoint.current.attempts + 1 }, 'run started');
  return { runId, trigger, journal, spent, limits, dailyCostUsd, definitionChanged, log };
}

async function runTask(claim: Claim, trigger: RunTrigger, booted: Extract<Booted, { kind: 'go' }>): Promise<ClaimResult> {
  const { deps, agent, task } = claim;
  const { outbox } = booted;
  const setup = await prepareRun(claim, trigger, outbox);
  const attempt = claim.checkpoint.current.attempts + 1;
  const trace = openRunTrace({ paths: deps.paths, config: deps.config, clock: deps.clock, log: setup.log, agent, taskId: task.id, runId: setup.runId, trigger, attempt, definitionChanged: setup.definitionChanged, resolutions: outbox.undelivered });
  const startedAt = deps.clock.now();
  const dailyAlert = new RunDailyAlert(deps, agent, setup.dailyCostUsd);
  const handoff = await readHandoffFor(deps.paths, agent.name, task.id);
  if (agent.command) await relinkSdkBeforeRun(deps.paths, setup.log); // an npm install in the home may have removed it
  const report = await hostRun({ ...hostInput(claim, setup, booted, handoff), trace, onSpend: (spent) => dailyAlert.spent(spent.dailyCostUsd) });
  const agentPid = claim.checkpoint.current.active_run?.pid;
  if (agentPid) await unregisterGroup(deps.paths, agent.name, agentPid); // the host killed the group when the run ended
  await dailyAlert.settled();
  const ended = { outcome: report.outcome.kind, steps: report.spend.steps, cost_usd: report.spend.costUsd };
  const ran: ClaimResult = { kind: 'ran', taskId: task.id, runId: setup.runId, outcome: report.outcome };
  if (report.outcome.kind === 'interrupted' && report.outcome.reason === 'lock_lost') {
    setup.log.warn(ended, 'lease lost; the run is abandoned');
    return ran; // another daemon owns the task now: nothing more is written
  }
  await deps.fence?.().catch((err: unknown) => {
    throw err instanceof LeaseLostError ? err.during(setup.runId) : err;
  });
  const finished = { agent, task, claimed: claim.claimed, checkpoint: claim.checkpoint, runId: setup.runId, trigger, startedAt, report, limits: setup.limits, definitionChanged: setup.definitionChanged, spentBefore: setup.spent };
  await applyOutcome(deps, finished);
  await closeRunTrace(trace, report);
  // Logged once the outcome is in the files, so whoever waits for this line can read them.
  setup.log.info(ended, 'run ended');
  return ran;
}

/** What the run host is given: the start message, the budgets, the replay, and the records port. */
function hostInput(claim: Claim, setup: RunSetup, booted: Extract<Booted, { kind: 'go' }>, handoff: unknown): Omit<RunHostInput, 'trace' | 'onSpend'> {
  const { deps, agent, task, checkpoint } = claim;
  const { outbox, context } = booted;
  const { runId, spent, log } = setup;
  const cp = checkpoint.current;
  return {
    agent,
    taskId: task.id,
    runId,
    start: {
      task: task as unknown as Record<string, unknown>,
      context: context.kind === 'ok' ? context.context : null,
      resume: { checkpoint: cp.state, handoff, resolutions: outbox.undelivered.map(toDelivered) },
    },
    limits: setup.limits,
    spentBefore: { steps: spent.steps, toolCalls: spent.toolCalls, tokens: spent.inputTokens + spent.outputTokens, costUsd: spent.costUsd, runtimeMs: cp.runtime_ms, dailyCostUsd: setup.dailyCostUsd },
    replay: setup.journal.effectiveAtStart(),
    records: runRecords({ ports: effectPorts(claim), agent, taskId: task.id, runId, trigger: setup.trigger, journal: setup.journal, checkpoint, spentBefore: spent, delivered: outbox.undelivered, now: () => deps.clock.now() }),
    takeWarm: deps.warm ? () => deps.warm!.take(agent) : undefined,
    sideEffectDecisions: outbox.sideEffectDecisions,
    approvals: outbox.approvals,
    tainted: outbox.suspectedInjection,
    onSuspectedInjection: (found) => reportSuspectedInjection({ ...deps, log }, agent, task.id, runId, found),
    audit: deps.audit,
    agentdEnv: { ...booted.agentdEnv, AGENTD_RUN_ID: runId },
    models: withAgentRetry(deps.models, agent.retry),
    tools: deps.tools,
    priceOf: deps.priceOf,
    clock: deps.clock,
    log,
    interrupt: deps.interrupt,
    live: deps.live,
    fence: deps.fence,
    endpoint: deps.endpoint,
    checkpointSeq: cp.checkpoint_seq,
    resumedFromCheckpoint: cp.state !== null,
  };
}

async function escalateBoot(claim: Claim, effect: RaiseItem): Promise<ClaimResult> {
  const item = await raiseOutboxItem(claim.deps, effect);
  return { kind: 'blocked', itemId: item!.id, reason: effect.item.reason, parked: await parkIfWaiting(claim.deps, claim.agent, claim.task, claim.claimed) };
}

/** `while_waiting: park`: a task waiting on a person leaves the queue, so the next one can run (README "Tasks"). */
async function parkIfWaiting(deps: RunnerDeps, agent: AgentDefinition, task: Task, claimed: Buffer): Promise<boolean> {
  if (!shouldPark(agent.whileWaiting, true)) return false;
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
