import type { Logger } from 'pino';
import type { ErrorCategory } from '../errors.js';
import type { AgentProcess } from './agent-process.js';
import type { AgentDefinition, BudgetLimits } from '../config/types.js';
import type { HandoffMessage, StartMessage, StopReason, UncertainMessage } from '../protocol/messages.js';
import type { GatewayCall, GatewayResult } from '../model/types.js';
import type { EffectiveCall, JournalRecord, JournalSpend, JournalTotals } from '../store/journal.js';
import type { AuditEntry } from '../observe/audit.js';
import type { RunTrace } from '../observe/trace.js';
import type { ApprovalCause, ApprovalRecord } from '../tools/approval.js';
import type { PriceRate, Spent } from './budget.js';
import type { Clock } from './clock.js';
import type { LiveRuns } from './live-runs.js';
import type { SuspectedInjection } from './taint.js';
import type { RunEndpoint } from '../endpoint/server.js';

/** The shapes around one run: what the run host needs, and what it returns as data. */

export interface ModelCaller {
  call(call: GatewayCall): Promise<GatewayResult>;
  /** The model's circuit right now (closed, open, half_open), for the trace. */
  circuitState?(model: string): string;
  /** When an open circuit lets its half-open probe through (epoch ms); null while calls go through. */
  circuitReadyAt?(model: string): number | null;
}

/** What the agent asked a tool to do, answered by the tools layer. */
export interface ToolCaller {
  /**
   * `onStart` is awaited once the call is admitted (allowed, valid arguments,
   * circuit closed) and just before the tool runs: only then is it journaled
   * and counted toward max_tool_calls. `ran: false` on a refusal that came first.
   * `signal`: the run is stopping; a tool still running is killed (its group) and answered `stopped`.
   */
  call(request: { agent: AgentDefinition; taskId: string; runId: string; seq: number; name: string; args: Record<string, unknown>; onStart?: () => Promise<void>; signal?: AbortSignal }): Promise<
    | { ok: true; result: unknown }
    | { ok: false; code: 'not_allowed' | 'invalid_args' | 'tool_failed' | 'denied' | 'stopped'; message: string; ran?: boolean }
    /** Refused without running because the tool's circuit is open; `retryAfterMs`: when it lets a call through again. */
    | { ok: false; code: 'circuit_open'; message: string; retryAfterMs: number; ran: false }
  >;
}

export type RunOutcome =
  | { kind: 'done'; output: unknown }
  | { kind: 'escalated'; message: UncertainMessage }
  | { kind: 'limit'; reason: StopReason; handoff: HandoffMessage | null }
  | { kind: 'interrupted'; reason: 'shutdown' | 'lock_lost'; handoff: HandoffMessage | null }
  | { kind: 'provider_unavailable'; model: string; message: string }
  /**
   * A tool call that needs a person's approval first; the run stops until it is resolved.
   * `expired`: an approval of this exact call was given, longer ago than approval_ttl.
   */
  | { kind: 'approval'; seq: number; tool: string; args: Record<string, unknown>; callHash: string; cause: ApprovalCause; expired: ApprovalRecord | null }
  /** A write/irreversible, non-idempotent tool call started before a crash and never completed. */
  | { kind: 'unsure_side_effect'; seq: number; tool: string; args: Record<string, unknown>; idempotencyKey: string }
  /**
   * `stderrTail`: the agent's last stderr lines, when it exited on its own without a result.
   * `retry: false`: dead-lettered at once whatever its category, when running it again could repeat what it did.
   */
  | { kind: 'failed'; category: ErrorCategory; message: string; stderrTail?: string[]; retry?: false };

export interface RunReport {
  outcome: RunOutcome;
  /** Real spend of this run only. */
  spend: JournalSpend;
  models: string[];
  degraded: boolean;
  runtimeMs: number;
  /** Calls of the task so far when the run ended: where state handed over at the end resumes. */
  seq: number;
  /** Wall time of each model call the gateway answered in this run (not replays, not cache hits), ms. */
  modelLatencyMs: number[];
  /** The model whose unavailability (no fallback left) ended a failed run: an outage, not the task's fault (run/outage.ts). */
  outageModel?: string | null;
  /** The task's journal totals at the run's end (every run's spend, the last records): finishing does not read the journal again. */
  journal: JournalTotals;
}

/** A checkpoint the agent sent, as the run records it. */
export interface RunCheckpoint {
  state: unknown;
  context: unknown;
  /** Whether the message carried a context (null is a context too). */
  hasContext: boolean;
  /** How many calls the task had made when the agent checkpointed (where a resume from it continues). */
  seq: number;
  /** What this run has spent so far, kept in checkpoint.json as the task's spend floor. */
  runSpend: JournalSpend;
}

/**
 * Where a run records what it does (README "The guarantee"): the task's
 * journal, its checkpoint and context, and the hand-over of a person's
 * resolutions. The run host builds no path; the claim gives it this port.
 */
export interface RunRecords {
  /** Appends to the task's journal, fdatasynced unless `sync` is false. */
  journal(record: JournalRecord, sync?: boolean): Promise<void>;
  /** The task's journal totals so far, this run's records included. */
  totals(): JournalTotals;
  /**
   * The agent's process has its start message: the run is recorded as running
   * in it, and the resolutions it was handed count as delivered.
   */
  started(pid: number | null): Promise<void>;
  /** One (coalesced) checkpoint made durable, with the context it carried. */
  checkpoint(checkpoint: RunCheckpoint): Promise<void>;
  /** The run is over: nothing more is appended. */
  close(): Promise<void>;
}

export interface RunHostInput {
  agent: AgentDefinition;
  taskId: string;
  runId: string;
  start: Omit<StartMessage, 'type' | 'budget' | 'run_id'>;
  limits: BudgetLimits;
  /** Spent before this run: journal totals, earlier runs' runtime, today's cost. */
  spentBefore: Spent;
  /** The task's effective call history, answered from while it matches. */
  replay: EffectiveCall[];
  /** Journal, checkpoint, context and delivery of this run. */
  records: RunRecords;
  /** A warm process for this run (run/warm-pool.ts), or null: then one is spawned. */
  takeWarm?: () => AgentProcess | null;
  /** A person's answers about calls whose outcome was unknown, by seq (`approve`: it happened; `retry`: run it again). */
  sideEffectDecisions: Map<number, { decision: 'approve' | 'retry'; answer?: string }>;
  /** A person's approvals of exact calls, keyed `<seq>:<call hash>`. */
  approvals: Map<string, ApprovalRecord>;
  /** Flagged content entered this task in an earlier run: write and irreversible tools need approval from the start. */
  tainted?: boolean;
  /** Content that looks like an injected instruction entered the run (the task input or a tool result). */
  onSuspectedInjection?(found: SuspectedInjection[]): Promise<void>;
  /** Every side-effecting tool call goes into the audit trail. */
  audit(entry: AuditEntry): Promise<void>;
  agentdEnv: Record<string, string>;
  models: ModelCaller;
  tools: ToolCaller;
  priceOf(model: string): PriceRate | null;
  clock: Clock;
  log: Logger;
  /** Aborted on daemon shutdown (reason 'shutdown') or a lost lock (reason 'lock_lost'). */
  interrupt: AbortSignal;
  /**
   * Throws LeaseLostError (store/lease.ts) once this daemon no longer holds the
   * agent's lock: checked before each agent message is acted on, since every
   * one of them may write (journal, checkpoint, result).
   */
  fence?: () => Promise<void>;
  /** The seq recorded with the last checkpoint, and whether the agent was handed that checkpoint. */
  checkpointSeq: number;
  resumedFromCheckpoint: boolean;
  /** Milliseconds between SIGTERM and SIGKILL of the process group. */
  killGraceMs?: number;
  /** Told after every call that spent something, with the task's spend so far (the daily cost alert). */
  onSpend?(spent: Spent): void;
  /** Where the run shows its live counters while it runs (the daemon's status and /metrics). */
  live?: LiveRuns;
  /** The daemon's OpenAI-compatible endpoint; the run registers there and its process gets the variables. */
  endpoint?: RunEndpoint;
  /** Spans of this run's calls and checkpoints (state/<agent>/traces/<run-id>.jsonl); none when absent. */
  trace?: RunTrace;
}
