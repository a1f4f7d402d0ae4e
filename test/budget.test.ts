import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BudgetLimits } from '../src/config/types.js';
import { decideModelCall, decideToolCall, exhaustedBudget, pastWarning, remaining, taskLimits, type Spent } from '../src/run/budget.js';
import { isStale, runRetryDelayMs, viewOutbox } from '../src/run/boot.js';
import type { OutboxItem } from '../src/store/outbox.js';

const limits: BudgetLimits = { steps: 10, toolCalls: 5, runtimeMs: 60_000, tokens: 1000, costUsd: 1, dailyCostUsd: 5 };
const hard: BudgetLimits = { steps: 100, toolCalls: 100, runtimeMs: 3_600_000, tokens: 100_000, costUsd: 10, dailyCostUsd: 50 };
const none: Spent = { steps: 0, toolCalls: 0, tokens: 0, costUsd: 0, runtimeMs: 0, dailyCostUsd: 0 };

describe('budget decisions', () => {
  it('refuses a model call once max_steps model calls were made', () => {
    assert.deepEqual(decideModelCall(limits, { ...none, steps: 10 }, 10, 100, null), { ok: false, reason: 'max_steps' });
    assert.equal(decideModelCall(limits, { ...none, steps: 9 }, 10, 100, null).ok, true);
  });

  it('clamps max_tokens to the tokens left after the prompt estimate', () => {
    assert.deepEqual(decideModelCall(limits, { ...none, tokens: 800 }, 100, 500, null), { ok: true, maxTokens: 100 });
  });

  it('refuses a call whose prompt alone would use up the tokens', () => {
    assert.deepEqual(decideModelCall(limits, { ...none, tokens: 950 }, 60, undefined, null), { ok: false, reason: 'max_tokens' });
  });

  it('clamps max_tokens to what the cost budget can still pay for', () => {
    const price = { inputUsdPerToken: 0.001, outputUsdPerToken: 0.01 };
    // 1 USD left: the 100-token prompt costs 0.1, so 90 output tokens fit.
    assert.deepEqual(decideModelCall({ ...limits, tokens: 100_000 }, none, 100, 500, price), { ok: true, maxTokens: 90 });
    assert.deepEqual(decideModelCall({ ...limits, tokens: 100_000 }, { ...none, costUsd: 0.95 }, 100, 500, price), { ok: false, reason: 'max_cost' });
  });

  it('refuses on the daily cap before the task cap when the day is nearly spent', () => {
    const price = { inputUsdPerToken: 0, outputUsdPerToken: 0.01 };
    assert.deepEqual(decideModelCall(limits, { ...none, dailyCostUsd: 5 }, 1, 10, price), { ok: false, reason: 'daily_cost' });
  });

  it('asks for no max_tokens when the budget is not tight and the agent named none', () => {
    assert.deepEqual(decideModelCall({ ...limits, tokens: 100_000 }, none, 10, undefined, null), { ok: true, maxTokens: undefined });
  });

  it('refuses a tool call past max_tool_calls', () => {
    assert.equal(decideToolCall(limits, { ...none, toolCalls: 5 }), 'max_tool_calls');
    assert.equal(decideToolCall(limits, { ...none, toolCalls: 4 }), null);
  });

  it('names the budget that is used up', () => {
    assert.equal(exhaustedBudget(limits, { ...none, tokens: 1000 }), 'max_tokens');
    assert.equal(exhaustedBudget(limits, { ...none, costUsd: 1 }), 'max_cost');
    assert.equal(exhaustedBudget(limits, none), null);
  });

  it('warns at 80% of any budget', () => {
    assert.equal(pastWarning(limits, { ...none, steps: 7 }), false);
    assert.equal(pastWarning(limits, { ...none, steps: 8 }), true);
    assert.equal(pastWarning(limits, { ...none, runtimeMs: 48_000 }), true);
  });

  it('reports what is left, never below zero', () => {
    const left = remaining(limits, { ...none, steps: 12, costUsd: 0.25, dailyCostUsd: 4.9 });
    assert.equal(left.steps, 0);
    assert.ok(Math.abs(left.cost_usd - 0.1) < 1e-9, 'the daily cap leaves less than the task cap');
  });

  it('lets a task lower a budget but never raise it', () => {
    const t = taskLimits(limits, { max_steps: 3, max_tokens: 5000 }, [], hard);
    assert.equal(t.steps, 3);
    assert.equal(t.tokens, 1000);
  });

  it('raises a budget by a person\'s extend, capped by the hard limit', () => {
    const t = taskLimits(limits, undefined, [{ steps: 20 }, { cost_usd: 50 }, { runtime_ms: 1000 }], hard);
    assert.equal(t.steps, 30);
    assert.equal(t.costUsd, 10);
    assert.equal(t.runtimeMs, 61_000);
  });
});

describe('boot decisions', () => {
  const now = Date.parse('2026-11-24T12:00:00Z');

  it('a task older than task_max_age is stale, a younger one is not', () => {
    assert.equal(isStale('2026-11-24T07:59:59Z', 4 * 3_600_000, now), true);
    assert.equal(isStale('2026-11-24T08:00:01Z', 4 * 3_600_000, now), false);
    assert.equal(isStale('not a date', 4 * 3_600_000, now), true);
  });

  it('backs off exponentially with full jitter, capped', () => {
    assert.equal(runRetryDelayMs(1, 1000, 30_000, () => 0.999999), 999, 'rounded down, like a model call\'s backoff');
    assert.equal(runRetryDelayMs(3, 1000, 30_000, () => 0.5), 2000);
    assert.equal(runRetryDelayMs(10, 1000, 30_000, () => 1), 29_999);
    assert.equal(runRetryDelayMs(2, 1000, 30_000, () => 0), 0);
  });

  const item = (over: Partial<OutboxItem>): OutboxItem => ({
    id: 'a:1',
    kind: 'uncertain',
    agent: 'a',
    task_id: 't1',
    run_id: null,
    created_at: '2026-11-24T00:00:00Z',
    reason: 'why',
    status: 'open',
    ...over,
  });

  it('an open item for the task blocks it; config_error and items of other tasks do not', () => {
    assert.equal(viewOutbox([item({})], 't1').blocking?.id, 'a:1');
    assert.equal(viewOutbox([item({ kind: 'config_error' }), item({ task_id: 't2' })], 't1').blocking, null);
  });

  it('hands over resolved items once and reads cancel, accepted staleness and extends', () => {
    const resolved = (decision: 'continue' | 'cancel' | 'retry', over: Partial<OutboxItem> = {}) =>
      item({ status: 'resolved', resolution: { decision, by: 'ann', at: 'x' }, ...over });
    const view = viewOutbox(
      [
        resolved('continue', { id: 'a:2', kind: 'stale_task' }),
        resolved('continue', { id: 'a:3', kind: 'limit', delivered_at: 'y', resolution: { decision: 'continue', extend: { steps: 5 } } }),
        resolved('retry', { id: 'a:4', kind: 'stale_context' }),
      ],
      't1',
    );
    assert.deepEqual(view.undelivered.map((i) => i.id), ['a:2', 'a:4']);
    assert.equal(view.staleTaskAccepted, true);
    assert.equal(view.staleContextAccepted, false, 'retry asks for the check again');
    assert.deepEqual(view.extends, [{ steps: 5 }]);
    assert.equal(view.cancel, null);
    assert.equal(viewOutbox([resolved('cancel')], 't1').cancel?.id, 'a:1');
  });
});

describe('model gateway policy helpers', () => {
  it('alerts once when a run carries the day past 80% of the daily cap', async () => {
    const { crossesDailyAlert } = await import('../src/run/finish.js');
    assert.equal(crossesDailyAlert(7, 8, 10), true);
    assert.equal(crossesDailyAlert(8, 9, 10), false, 'already past: no second alert');
    assert.equal(crossesDailyAlert(1, 2, 10), false);
    assert.equal(crossesDailyAlert(0, 5, 0), false, 'no cap, no alert');
  });

  it('warns about model ids that are aliases', async () => {
    const { isModelAlias } = await import('../src/daemon/agent-registry.js');
    assert.equal(isModelAlias('openai/chatgpt-4o-latest'), true);
    assert.equal(isModelAlias('local/llama3.1:latest'), true);
    assert.equal(isModelAlias('openai/gpt-4.1-mini-2025-04-14'), false);
    assert.equal(isModelAlias('mock/echo'), false);
  });
});
