import type { BudgetRemaining, BudgetWarningMessage, StopReason } from '../protocol/messages.js';
import type { GatewayResult } from '../model/types.js';
import type { JournalSpend } from '../store/journal.js';
import { checkUsage, type Usage } from './usage-check.js';
import { budgetWarning, exhaustedBudget, pastWarning, remaining, type Spent } from './budget.js';
import type { RunHostInput } from './run-types.js';

/**
 * One run's spend tally and budget gate: what the task has spent (this run
 * included), what this run alone spent, the models that answered, and the
 * one `budget_warning` (docs/protocol.md). The arithmetic is run/budget.ts;
 * this holds the counters a run host reads and adds to.
 */
export class RunSpend {
  /** The task's spend, this run included (runtime is read from the clock, see spentNow). */
  readonly task: Spent;
  /** This run's own spend, as the journal and the checkpoint record it. */
  readonly run: JournalSpend = { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, costUsd: 0 };
  readonly models = new Set<string>();
  readonly modelLatencyMs: number[] = [];
  degraded = false;
  private warned = false;

  constructor(
    private readonly input: RunHostInput,
    private readonly startedAt: number,
  ) {
    this.task = { ...input.spentBefore };
  }

  spentNow(): Spent {
    return { ...this.task, runtimeMs: this.input.spentBefore.runtimeMs + (this.input.clock.now() - this.startedAt) };
  }

  remainingNow(): BudgetRemaining {
    return remaining(this.input.limits, this.spentNow());
  }

  countStep(): void {
    this.task.steps++;
    this.run.steps++;
  }

  countToolCall(): void {
    this.task.toolCalls++;
    this.run.toolCalls++;
  }

  /** Tokens and cost of an answered model call, the model that answered, its wall time (null for a cache hit). */
  charge(result: GatewayResult, latencyMs: number | null): void {
    if (latencyMs !== null) this.modelLatencyMs.push(latencyMs);
    this.addUsage(this.checkedUsage(result.usage, `model reply of ${result.model}`));
    this.models.add(result.model);
    if (result.degraded) this.degraded = true;
  }

  /** Non-finite or absurd figures count as the budget's maximum (run/usage-check.ts), logged and traced. */
  checkedUsage<U extends Usage>(usage: U, source: string): U {
    const check = checkUsage(usage, this.input.limits);
    if (check.ok) return usage;
    this.input.log.warn({ source, problems: check.problems, reported: usage, counted: check.usage }, 'absurd usage counted as the budget maximum');
    this.input.trace?.emit('usage', 'usage refused', { 'agentd.usage.source': source, 'agentd.usage.problems': check.problems }, { status: 'error' });
    return { ...usage, ...check.usage };
  }

  addUsage(usage: { input_tokens: number; output_tokens: number; cost_usd: number }): void {
    const tokens = usage.input_tokens + usage.output_tokens;
    this.task.tokens += tokens;
    this.task.costUsd += usage.cost_usd;
    this.task.dailyCostUsd += usage.cost_usd;
    this.run.inputTokens += usage.input_tokens;
    this.run.outputTokens += usage.output_tokens;
    this.run.costUsd += usage.cost_usd;
  }

  /** Reports the spend; returns the budget warning the agent gets once, when a budget is past its warning share. */
  afterSpend(): BudgetWarningMessage | null {
    this.input.onSpend?.(this.spentNow());
    if (this.warned) return null;
    const spent = this.spentNow();
    if (!pastWarning(this.input.limits, spent)) return null;
    this.warned = true;
    return budgetWarning(this.input.limits, spent);
  }

  /** The budget that ran out, if one did. */
  exhausted(): StopReason | null {
    return exhaustedBudget(this.input.limits, this.spentNow());
  }
}
