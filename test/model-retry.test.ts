import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs, decideRetry, normalisePolicy, totalAttemptCap } from '../src/model/retry.js';
import type { FailureClass } from '../src/model/types.js';

const policy = { attempts: 5, baseDelayMs: 1000, maxDelayMs: 10_000 };
const retryable: FailureClass = { category: 'provider_error', retryable: true, retryAfterMs: null, availability: true };

test('backoff grows exponentially from base_delay with full jitter', () => {
  // With random → just under 1 the delay approaches the ceiling base·2^(n-1).
  const top = () => 0.999999;
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelayMs(policy, n, null, top)), [999, 1999, 3999, 7999]);
  assert.deepEqual([1, 2, 3].map((n) => backoffDelayMs(policy, n, null, () => 0.5)), [500, 1000, 2000]);
  assert.equal(backoffDelayMs(policy, 3, null, () => 0), 0, 'full jitter may retry at once');
});

test('backoff is capped at max_delay however many attempts came before', () => {
  assert.equal(backoffDelayMs(policy, 5, null, () => 0.5), 5000);
  assert.equal(backoffDelayMs(policy, 60, null, () => 0.5), 5000);
  assert.ok(Number.isFinite(backoffDelayMs(policy, 10_000, null, () => 0.999)));
});

test('Retry-After replaces the jittered delay but is capped at max_delay', () => {
  assert.equal(backoffDelayMs(policy, 1, 7000, () => 0), 7000);
  assert.equal(backoffDelayMs(policy, 1, 120_000, () => 0), 10_000);
});

test('a policy is clamped to 1..10 attempts', () => {
  assert.equal(normalisePolicy({ ...policy, attempts: 0 }).attempts, 1);
  assert.equal(normalisePolicy({ ...policy, attempts: 99 }).attempts, 10);
});

test('the total attempt cap is attempts times the chain length, never above 10', () => {
  assert.equal(totalAttemptCap({ ...policy, attempts: 3 }, 0), 3);
  assert.equal(totalAttemptCap({ ...policy, attempts: 3 }, 2), 9);
  assert.equal(totalAttemptCap({ ...policy, attempts: 3 }, 3), 10);
});

test('decideRetry retries a retryable failure until the attempts or the cap run out', () => {
  assert.deepEqual(decideRetry(policy, retryable, 1, 9, () => 0.5), { kind: 'retry', delayMs: 500 });
  assert.deepEqual(decideRetry(policy, retryable, 5, 5, () => 0.5), { kind: 'give_up', reason: 'attempts_exhausted' });
  assert.deepEqual(decideRetry(policy, retryable, 2, 0, () => 0.5), { kind: 'give_up', reason: 'attempts_exhausted' });
  assert.deepEqual(decideRetry(policy, { ...retryable, retryable: false }, 1, 9, () => 0.5), { kind: 'give_up', reason: 'not_retryable' });
  assert.deepEqual(decideRetry(policy, { ...retryable, retryAfterMs: 3000 }, 1, 9, () => 0.5), { kind: 'retry', delayMs: 3000 });
});
