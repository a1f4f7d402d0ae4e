import type { AgentMessage, BudgetRemaining, BudgetUsed, BudgetWarningMessage, DaemonMessage } from './messages.js';

/**
 * The protocol codec (docs/protocol.md) shared by the daemon and the agent
 * SDK at run time: how a message becomes a line, and the budget arithmetic
 * both sides must agree on. It imports nothing with I/O and no validator, so
 * that an agent process that loads the SDK starts fast (a test walks the
 * import graph to keep it so).
 */

/** One message, one line of JSON. */
export function encodeMessage(message: DaemonMessage | AgentMessage): string {
  return JSON.stringify(message) + '\n';
}

/** An agent's spend today against its daily_cost_usd, which caps every task's cost too. */
export interface DailyCost {
  used_usd: number;
  limit_usd: number;
}

/**
 * What is left of each budget: the limit minus what was used, never below 0.
 * The cost left is the lower of the task's cost left and the agent's daily
 * cost left, when the daily cap is known.
 */
export function remainingBudget(limits: BudgetUsed, used: BudgetUsed, daily?: DailyCost): BudgetRemaining {
  const taskCost = limits.cost_usd - used.cost_usd;
  const cost = daily ? Math.min(taskCost, daily.limit_usd - daily.used_usd) : taskCost;
  return {
    steps: Math.max(0, limits.steps - used.steps),
    tool_calls: Math.max(0, limits.tool_calls - used.tool_calls),
    tokens: Math.max(0, limits.tokens - used.tokens),
    cost_usd: Math.max(0, cost),
    runtime_ms: Math.max(0, limits.runtime_ms - used.runtime_ms),
  };
}

/** The remaining budget a budget_warning implies, the same way the daemon computes it. */
export function remainingAfterWarning(warning: Pick<BudgetWarningMessage, 'used' | 'limits' | 'daily'>): BudgetRemaining {
  return remainingBudget(warning.limits, warning.used, warning.daily);
}
