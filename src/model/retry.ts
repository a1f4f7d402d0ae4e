import type { RetryPolicy } from '../config/types.js';
import type { FailureClass } from './types.js';
import { fullJitterDelayMs } from '../core/backoff.js';

/** README "Agent definitions": `retry.attempts` is 1..10, whatever a caller passes. */
export const MAX_ATTEMPTS = 10;

/** The policy with attempts clamped to 1..10 and delays made non-negative. */
export function normalisePolicy(policy: RetryPolicy): RetryPolicy {
  const attempts = Math.min(MAX_ATTEMPTS, Math.max(1, Math.floor(policy.attempts)));
  const baseDelayMs = Math.max(0, policy.baseDelayMs);
  return { attempts, baseDelayMs, maxDelayMs: Math.max(baseDelayMs, policy.maxDelayMs) };
}

/**
 * Attempts one gateway call may make across its retries and fallbacks: the
 * policy's attempts for each model in the chain, never more than 10, so a long
 * fallback list cannot turn one step into dozens of paid requests.
 */
export function totalAttemptCap(policy: RetryPolicy, fallbacks: number): number {
  return Math.min(MAX_ATTEMPTS, normalisePolicy(policy).attempts * (1 + Math.max(0, fallbacks)));
}

/**
 * How long to wait after failed attempt number `attempt` (1-based).
 * Retry-After wins when the provider sent one (it knows its own load), capped
 * at max_delay so a provider cannot park a run for an hour. Otherwise
 * exponential backoff with full jitter: uniform in [0, min(max, base·2^(n-1))),
 * which spreads the retries of many agents hitting one provider at once.
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs: number | null, random: () => number): number {
  const p = normalisePolicy(policy);
  if (retryAfterMs !== null) return Math.min(Math.max(0, retryAfterMs), p.maxDelayMs);
  return fullJitterDelayMs(attempt, p.baseDelayMs, p.maxDelayMs, random);
}

/** What to do after a failed attempt. */
export type RetryDecision = { kind: 'retry'; delayMs: number } | { kind: 'give_up'; reason: 'not_retryable' | 'attempts_exhausted' };

/**
 * Retry or not, and after how long, from the failure's class alone (never the
 * raw error). `attemptsLeft` is what the total cap still allows.
 */
export function decideRetry(policy: RetryPolicy, failure: FailureClass, attempt: number, attemptsLeft: number, random: () => number): RetryDecision {
  if (!failure.retryable) return { kind: 'give_up', reason: 'not_retryable' };
  if (attempt >= normalisePolicy(policy).attempts || attemptsLeft <= 0) return { kind: 'give_up', reason: 'attempts_exhausted' };
  return { kind: 'retry', delayMs: backoffDelayMs(policy, attempt, failure.retryAfterMs, random) };
}
