import type { BudgetLimits } from '../config/types.js';

/**
 * Usage figures an agent or a provider reports are checked before they are
 * counted (README "Budgets"): a figure that is not a finite number, or is
 * larger than any real call could use, would overflow the sums to Infinity,
 * which JSON stores as null and reads back as 0 (an unlimited budget). Such a
 * figure is counted as the budget's maximum instead, so the run stops on that
 * budget, and the caller says so. Pure.
 */

/** More tokens than any model call uses: a report above this is a bug or an attack. */
export const ABSURD_TOKENS = 1e12;
/** More than any single call costs. */
export const ABSURD_COST_USD = 1e6;

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
}

export type UsageCheck = { ok: true; usage: Usage } | { ok: false; usage: Usage; problems: string[] };

function sane(value: number, absurd: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= absurd;
}

/** A budget's maximum as a finite number (an unlimited budget counts as the absurd bound). */
function finiteMax(limit: number, absurd: number): number {
  return Number.isFinite(limit) && limit >= 0 ? Math.min(limit, absurd) : absurd;
}

export function checkUsage(raw: Usage, limits: BudgetLimits): UsageCheck {
  const problems: string[] = [];
  const usage = { ...raw };
  const tokensOk = sane(raw.input_tokens, ABSURD_TOKENS) && sane(raw.output_tokens, ABSURD_TOKENS) && raw.input_tokens + raw.output_tokens <= ABSURD_TOKENS;
  if (!tokensOk) {
    problems.push(`tokens ${String(raw.input_tokens)} in, ${String(raw.output_tokens)} out are not finite or over ${ABSURD_TOKENS}; counted as the budget's max_tokens`);
    usage.input_tokens = finiteMax(limits.tokens, ABSURD_TOKENS);
    usage.output_tokens = 0;
  }
  if (!sane(raw.cost_usd, ABSURD_COST_USD)) {
    problems.push(`cost_usd ${String(raw.cost_usd)} is not finite or over ${ABSURD_COST_USD}; counted as the budget's max_cost_usd`);
    usage.cost_usd = finiteMax(Math.min(limits.costUsd, limits.dailyCostUsd), ABSURD_COST_USD);
  }
  return problems.length === 0 ? { ok: true, usage } : { ok: false, usage, problems };
}
