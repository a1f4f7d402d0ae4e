import { parseDuration } from '../config/duration.js';
import type { BudgetLimits } from '../config/types.js';

/** A budget as a person writes it (agentd.yaml, a definition, a task). */
export interface RawBudget {
  max_steps?: number;
  max_tool_calls?: number;
  max_runtime?: string | number;
  max_tokens?: number;
  max_cost_usd?: number;
  daily_cost_usd?: number;
}

/** `base` with every limit `raw` names replaced; pure, so budget arithmetic needs no config loader. */
export function mergeBudget(base: BudgetLimits, raw: RawBudget | undefined): BudgetLimits {
  if (!raw) return { ...base };
  return {
    steps: raw.max_steps ?? base.steps,
    toolCalls: raw.max_tool_calls ?? base.toolCalls,
    runtimeMs: raw.max_runtime !== undefined ? parseDuration(raw.max_runtime) : base.runtimeMs,
    tokens: raw.max_tokens ?? base.tokens,
    costUsd: raw.max_cost_usd ?? base.costUsd,
    dailyCostUsd: raw.daily_cost_usd ?? base.dailyCostUsd,
  };
}
