import type { Logger } from 'pino';
import type { ErrorCategory } from '../errors.js';
import type { AgentDefinition, BudgetLimits } from '../config/types.js';
import type { HandoffMessage, StartMessage, StopReason, UncertainMessage } from '../protocol/messages.js';
import type { GatewayCall, GatewayResult } from '../model/types.js';
import type { EffectiveCall, JournalSpend } from '../store/journal.js';
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
}

/** What the agent asked a tool to do, answered by the tools layer. */
export interface ToolCaller {
  /**
   * `onStart` is awaited once the call is admitted (allowed, valid arguments,
   * circuit closed) and just before the tool runs: only then is it journaled
   * and counted toward max_tool_calls. `ran: false` on a refusal that came first.
   */
  call(request: { agent: AgentDefinition; taskId: string; runId: string; seq: number; name: string; args: Record<string, unknown>; onStart?: () => Promise<void> }): Promise<
    | { ok: true; result: unknown }
    | { ok: false; code: 'not_allowed' | 'invalid_args' | 'tool_failed' | 'denied'; message: string; ran?: boolean }
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
  /** `stderrTail`: the agent's last stderr lines, when it exited on its own without a result. */
  | { kind: 'failed'; category: ErrorCategory; message: string; stderrTail?: string[] };

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
  journalFile: string;
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
  onSpawn(pid: number | null): Promise<void>;
  /** `seq`: how many calls the task had made when the agent checkpointed (where a resume from it continues). */
  /** `runSpend`: what this run has spent so far, kept in checkpoint.json as the task's spend floor. */
  onCheckpoint(state: unknown, context: unknown, hasContext: boolean, seq: number, runSpend: JournalSpend): Promise<void>;
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
