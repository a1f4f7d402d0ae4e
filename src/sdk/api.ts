import type { BudgetRemaining, DeliveredResolution, LogMessage, ModelRequest, StopReason, ToolCall, Usage } from '../protocol/messages.js';

/**
 * What an agent function sees (README "Writing an agent", docs/protocol.md):
 * the context it is called with, the values its calls resolve to, and the
 * error they reject with. `agentd/sdk` (src/sdk/index.ts) re-exports it all.
 */

/** A call the daemon refused or that failed: `code` is stable, match on it, never on the message. */
export class AgentdError extends Error {
  override readonly name = 'AgentdError';
  constructor(
    /** One of the protocol's error codes (`budget_exhausted`, `not_allowed`, `invalid_args`, `provider_unavailable`, `tool_failed`, `stopping`, ...). */
    readonly code: string,
    message: string,
    /** With `circuit_open`: ms until the tool's circuit lets a call through again. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The task as the daemon hands it over: `id` and `goal` always, the rest as written. */
export interface AgentTask {
  id: string;
  goal: string;
  input?: unknown;
  created_at?: string;
  priority?: number;
  critical?: boolean;
  [key: string]: unknown;
}

export interface Resume {
  /** What the task's last checkpoint held, or null on a first run. */
  checkpoint: unknown;
  /** The handoff of an earlier stopped run, or null. */
  handoff: unknown;
  /** Outbox items a person resolved since the last run (an `answer` to an `uncertain`, an `extend`...). */
  resolutions: DeliveredResolution[];
}

export interface ModelReply {
  content: string | null;
  tool_calls: ToolCall[];
  usage: Usage;
  /** The model that answered: a fallback model when the primary was unavailable. */
  model: string;
  /** True when the daemon answered from the journal (a resumed run): no cost, no new call. */
  replayed: boolean;
}

export interface Escalation {
  reason: string;
  question?: string;
  blockers?: unknown[];
  /** What the agent knew; a person sees it in the outbox item. */
  state?: unknown;
}

export interface Handoff {
  summary: string;
  next_steps?: unknown[];
  /** Defaults to the state of the last `ctx.checkpoint()` of this run. */
  state?: unknown;
}

export type StopHandler = (reason: StopReason) => Handoff | Promise<Handoff>;

export type LogLevel = NonNullable<LogMessage['level']>;

/** What `ctx.uncertain()` resolves to. Returning it (or anything after an escalation) sends no result. */
export const ESCALATED: unique symbol = Symbol('agentd.escalated');
export type Escalated = typeof ESCALATED;

export interface AgentContext {
  readonly task: AgentTask;
  /** The agent's context-snapshot.json, or null. */
  readonly context: unknown;
  readonly resume: Resume;
  readonly runId: string;
  /** What is left of the task's budget: from `start`, updated by each `budget_warning`. */
  readonly budget: { readonly remaining: BudgetRemaining };
  /** Aborted when the daemon sends `stop` (or goes away); pass it to your own fetches and loops. */
  readonly signal: AbortSignal;
  /** Why the run is stopping, or null while it is not. */
  readonly stopReason: StopReason | null;
  /** One model call through the daemon's gateway. Rejects with AgentdError. */
  model(request: ModelRequest): Promise<ModelReply>;
  /** One tool call; resolves to the tool's result. Rejects with AgentdError. */
  tool<T = unknown>(name: string, args: Record<string, unknown>): Promise<T>;
  /** Save `state` (and `context`, into context-snapshot.json) so a later run can resume from it. */
  checkpoint(state: unknown, context?: unknown): Promise<void>;
  /** Escalate to a person and end the run: `return ctx.uncertain({...})`. */
  uncertain(escalation: Escalation): Promise<Escalated>;
  /** Report tokens and cost spent outside agentd (a direct API call), so budgets count them. */
  usage(usage: { input_tokens: number; output_tokens: number; cost_usd?: number }): void;
  log(level: LogLevel, msg: string): void;
  /** Called once when `stop` arrives; what it returns is sent as the handoff. */
  onStop(handler: StopHandler): void;
}

export type AgentFunction = (ctx: AgentContext) => unknown;
