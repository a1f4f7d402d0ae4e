import type { AgentDefinition } from '../config/types.js';
import type { OutboxItem } from '../store/outbox.js';
import { raise } from '../core/effects.js';
import { raiseOutboxItem } from '../store/effects.js';
import { utcDay } from '../store/spend.js';
import type { RunnerDeps } from './runner.js';

/**
 * The daily cost alert (README "Budgets"): one `budget_alert` item per agent
 * per UTC day, raised the moment its spend today crosses 80% of
 * daily_cost_usd, while the run that crossed it is still going, not when it ends.
 */

/** Share of daily_cost_usd at which a person is told, once per agent per UTC day. */
export const DAILY_ALERT_SHARE = 0.8;

/** Pure: did this spend carry the agent's spend today across the alert line? */
export function crossesDailyAlert(before: number, after: number, dailyCapUsd: number): boolean {
  // Less a hair: 0.2 * 0.8 is 0.16000000000000003 in floating point, and $0.16 spent is past it.
  const line = dailyCapUsd * DAILY_ALERT_SHARE - 1e-9;
  return dailyCapUsd > 0 && before < line && after >= line;
}

/** Pure: what the item says, true to where the spend stands (short of the cap, or at it). */
export function dailyAlertText(agent: string, spentUsd: number, capUsd: number): { reason: string; question: string } {
  const reason = `${agent} has spent $${spentUsd.toFixed(4)} today (UTC), past ${DAILY_ALERT_SHARE * 100}% of its daily_cost_usd $${capUsd}`;
  const question =
    spentUsd >= capUsd
      ? `The daily cap is reached: ${agent}'s model calls are refused until the UTC day ends (raise daily_cost_usd to go on). Resolve to acknowledge.`
      : `Nothing is held back yet; at $${capUsd} today, ${agent}'s model calls are refused until the UTC day ends. Resolve to acknowledge.`;
  return { reason, question };
}

/** Write the day's alert if `before` → `after` crossed the line and none is there for the day yet. */
export async function alertDailySpend(deps: RunnerDeps, agent: AgentDefinition, before: number, after: number, now: Date): Promise<void> {
  if (!crossesDailyAlert(before, after, agent.budget.dailyCostUsd)) return;
  const day = utcDay(now);
  const cap = agent.budget.dailyCostUsd;
  const item = { kind: 'budget_alert' as const, agent: agent.name, task_id: null, run_id: null, created_at: now.toISOString(), ...dailyAlertText(agent.name, after, cap), details: { day, spent_usd: after, daily_cost_usd: cap } };
  const alerted = (items: OutboxItem[]) => items.some((i) => i.kind === 'budget_alert' && (i.details as { day?: string } | undefined)?.day === day);
  // A notice, not a decision: no audit line.
  await raiseOutboxItem(deps, raise(item, { msg: 'agent passed 80% of its daily cost cap', fields: { spent_usd: after, daily_cost_usd: cap } }, null), alerted);
}

/**
 * Watches one run's spend as it happens: the first crossing writes the alert
 * at once. The writes queue on one promise that the claim awaits before it finishes.
 */
export class RunDailyAlert {
  private pending: Promise<void> = Promise.resolve();
  private last: number;

  constructor(
    private readonly deps: RunnerDeps,
    private readonly agent: AgentDefinition,
    spentTodayBefore: number,
  ) {
    this.last = spentTodayBefore;
  }

  /** Today's spend so far, after a call: alert when it just crossed the line. */
  spent(todayUsd: number): void {
    const before = this.last;
    this.last = todayUsd;
    if (!crossesDailyAlert(before, todayUsd, this.agent.budget.dailyCostUsd)) return;
    this.pending = this.pending
      .then(() => alertDailySpend(this.deps, this.agent, before, todayUsd, new Date(this.deps.clock.now())))
      .catch((err: unknown) => this.deps.log.error({ err }, 'could not write the daily cost alert'));
  }

  /** Every alert write of the run has finished. */
  settled(): Promise<void> {
    return this.pending;
  }
}
