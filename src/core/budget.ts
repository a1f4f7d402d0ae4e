import type { BudgetLimits } from '../config/types.js';
import type { BudgetRemaining, BudgetUsed, BudgetWarningMessage, StopReason } from '../protocol/messages.js';
import { mergeBudget, type RawBudget } from './budget-merge.js';
import { remainingBudget, type DailyCost } from '../protocol/codec.js';

/**
 * Budget decisions, pure: given limits, what was spent and a clock reading,
 * may this call go ahead, how large may it be, and which budget ran out.
 */

export interface Spent {
  steps: number;
  toolCalls: number;
  tokens: number;
  costUsd: number;
  runtimeMs: number;
  /** This agent's spend today (UTC), including this task. */
  dailyCostUsd: number;
}

export interface PriceRate {
  inputUsdPerToken: number;
  outputUsdPerToken: number;
}

/** Share of a budget at which the agent gets one `budget_warning`. */
export const WARNING_SHARE = 0.8;
/** Output tokens asked for when the agent names no max_tokens and the budget is not tight. */
export const DEFAULT_OUTPUT_TOKENS = 4096;

const EXTEND_KEYS: Record<string, keyof BudgetLimits> = {
  steps: 'steps',
  max_steps: 'steps',
  tool_calls: 'toolCalls',
  max_tool_calls: 'toolCalls',
  tokens: 'tokens',
  max_tokens: 'tokens',
  cost_usd: 'costUsd',
  max_cost_usd: 'costUsd',
  runtime_ms: 'runtimeMs',
  runtime: 'runtimeMs',
  max_runtime: 'runtimeMs',
};

/** The key a person may use in `--extend`, or undefined. */
export function extendKey(key: string): keyof BudgetLimits | undefined {
  return EXTEND_KEYS[key];
}

/**
 * A task's limits: the agent's, lowered (never raised) by the task's own
 * budget, then raised by a person's `extend`s, capped by the hard limits.
 */
export function taskLimits(agent: BudgetLimits, task: RawBudget | undefined, extends_: Record<string, number>[], hard: BudgetLimits): BudgetLimits {
  const fromTask = mergeBudget(agent, task);
  const limits = { ...agent };
  for (const key of Object.keys(limits) as (keyof BudgetLimits)[]) limits[key] = Math.min(agent[key], fromTask[key]);
  for (const extension of extends_) {
    for (const [key, amount] of Object.entries(extension)) {
      const k = extendKey(key);
      if (k && k !== 'dailyCostUsd') limits[k] += amount;
    }
  }
  for (const key of Object.keys(limits) as (keyof BudgetLimits)[]) limits[key] = Math.min(limits[key], hard[key]);
  return limits;
}

/** The remaining budget, computed by the codec the SDK uses too, so both agree on the daily cap. */
export function remaining(limits: BudgetLimits, spent: Spent): BudgetRemaining {
  return remainingBudget(limitsView(limits), usedView(spent), dailyView(limits, spent));
}

function dailyView(limits: BudgetLimits, spent: Spent): DailyCost {
  return { used_usd: spent.dailyCostUsd, limit_usd: limits.dailyCostUsd };
}

/** The one budget_warning of a run: what was used, the limits, and the daily cap that also bounds the cost left. */
export function budgetWarning(limits: BudgetLimits, spent: Spent): BudgetWarningMessage {
  return { type: 'budget_warning', used: usedView(spent), limits: limitsView(limits), daily: dailyView(limits, spent) };
}

export function usedView(spent: Spent): BudgetUsed {
  return { steps: spent.steps, tool_calls: spent.toolCalls, tokens: spent.tokens, cost_usd: spent.costUsd, runtime_ms: spent.runtimeMs };
}

export function limitsView(limits: BudgetLimits): BudgetUsed {
  return { steps: limits.steps, tool_calls: limits.toolCalls, tokens: limits.tokens, cost_usd: limits.costUsd, runtime_ms: limits.runtimeMs };
}

export type ModelCallDecision = { ok: true; maxTokens: number | undefined } | { ok: false; reason: StopReason };

/**
 * May a model call go ahead? Checks steps, runtime, then tokens and cost
 * against the prompt estimate plus max_tokens, clamping max_tokens to what is left.
 */
export function decideModelCall(
  limits: BudgetLimits,
  spent: Spent,
  promptTokens: number,
  requestedMaxTokens: number | undefined,
  price: PriceRate | null,
): ModelCallDecision {
  if (spent.steps >= limits.steps) return { ok: false, reason: 'max_steps' };
  if (spent.runtimeMs >= limits.runtimeMs) return { ok: false, reason: 'max_runtime' };
  let allowed = limits.tokens - spent.tokens - promptTokens;
  if (allowed < 1) return { ok: false, reason: 'max_tokens' };
  if (price) {
    for (const [limit, used, reason] of [
      [limits.costUsd, spent.costUsd, 'max_cost'],
      [limits.dailyCostUsd, spent.dailyCostUsd, 'daily_cost'],
    ] as const) {
      const left = limit - used - promptTokens * price.inputUsdPerToken;
      const affordable = price.outputUsdPerToken > 0 ? Math.floor(left / price.outputUsdPerToken) : left >= 0 ? Infinity : -1;
      if (affordable < 1) return { ok: false, reason };
      allowed = Math.min(allowed, affordable);
    }
  } else {
    if (spent.costUsd >= limits.costUsd) return { ok: false, reason: 'max_cost' };
    if (spent.dailyCostUsd >= limits.dailyCostUsd) return { ok: false, reason: 'daily_cost' };
  }
  if (requestedMaxTokens !== undefined) return { ok: true, maxTokens: Math.min(requestedMaxTokens, allowed) };
  return { ok: true, maxTokens: allowed < DEFAULT_OUTPUT_TOKENS ? allowed : undefined };
}

export function decideToolCall(limits: BudgetLimits, spent: Spent): StopReason | null {
  if (spent.toolCalls >= limits.toolCalls) return 'max_tool_calls';
  if (spent.runtimeMs >= limits.runtimeMs) return 'max_runtime';
  return null;
}

/** A budget that is used up after the last call: the next call would be refused. */
export function exhaustedBudget(limits: BudgetLimits, spent: Spent): StopReason | null {
  if (spent.tokens >= limits.tokens) return 'max_tokens';
  if (spent.costUsd >= limits.costUsd) return 'max_cost';
  if (spent.dailyCostUsd >= limits.dailyCostUsd) return 'daily_cost';
  if (spent.runtimeMs >= limits.runtimeMs) return 'max_runtime';
  return null;
}

/** True once any budget has reached WARNING_SHARE of its limit. */
export function pastWarning(limits: BudgetLimits, spent: Spent): boolean {
  return (
    spent.steps >= limits.steps * WARNING_SHARE ||
    spent.toolCalls >= limits.toolCalls * WARNING_SHARE ||
    spent.tokens >= limits.tokens * WARNING_SHARE ||
    spent.costUsd >= limits.costUsd * WARNING_SHARE ||
    spent.runtimeMs >= limits.runtimeMs * WARNING_SHARE
  );
}

/** A cheap prompt-size estimate: about four characters a token. */
export function estimatePromptTokens(request: { messages: unknown; tools?: unknown }): number {
  const chars = JSON.stringify(request.messages).length + (request.tools ? JSON.stringify(request.tools).length : 0);
  return Math.ceil(chars / 4);
}
