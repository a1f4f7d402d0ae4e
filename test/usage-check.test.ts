import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { BudgetLimits } from '../src/config/types.js';
import { ABSURD_COST_USD, ABSURD_TOKENS, checkUsage } from '../src/run/usage-check.js';

const LIMITS: BudgetLimits = { steps: 10, toolCalls: 10, runtimeMs: 60_000, tokens: 50_000, costUsd: 2, dailyCostUsd: 5 };

describe('usage reports are checked before they are counted', () => {
  it('ordinary figures pass unchanged', () => {
    assert.deepEqual(checkUsage({ input_tokens: 10, output_tokens: 5, cost_usd: 0.01 }, LIMITS), { ok: true, usage: { input_tokens: 10, output_tokens: 5, cost_usd: 0.01 } });
  });

  it('1e308, Infinity, NaN and negative figures count as the budget maximum and are named', () => {
    for (const bad of [1e308, Infinity, NaN, -1]) {
      const check = checkUsage({ input_tokens: bad, output_tokens: 1, cost_usd: bad }, LIMITS);
      assert.equal(check.ok, false);
      assert.deepEqual(check.usage, { input_tokens: 50_000, output_tokens: 0, cost_usd: 2 });
      assert.equal(!check.ok && check.problems.length, 2);
    }
  });

  it('two large halves whose sum is absurd are caught; an unlimited budget counts the absurd bound, never Infinity', () => {
    const unlimited = { ...LIMITS, tokens: Infinity, costUsd: Infinity, dailyCostUsd: Infinity };
    const check = checkUsage({ input_tokens: ABSURD_TOKENS, output_tokens: ABSURD_TOKENS, cost_usd: ABSURD_COST_USD * 10 }, unlimited);
    assert.deepEqual(check.usage, { input_tokens: ABSURD_TOKENS, output_tokens: 0, cost_usd: ABSURD_COST_USD });
  });

  it('the daily cap counts when it is lower than the task cap', () => {
    assert.equal(checkUsage({ input_tokens: 1, output_tokens: 1, cost_usd: 1e308 }, { ...LIMITS, dailyCostUsd: 1 }).usage.cost_usd, 1);
  });
});
