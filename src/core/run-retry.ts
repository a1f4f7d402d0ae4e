import { isRetryable } from '../errors.js';
import { fullJitterDelayMs } from './backoff.js';

/** What happens to a task after a run of it failed. */
export type RunRetryDecision =
  | { kind: 'retry'; attempts: number; delayMs: number }
  | { kind: 'dead_letter'; attempts: number; reason: 'not_retryable' | 'attempts_used' };

export interface RunRetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Retry the task later, or dead-letter it now. A failure a person must fix
 * (bad input, invalid args, auth, bad request) fails the same way on every
 * attempt, so it dead-letters at once instead of burning max_attempts.
 * `attemptsBefore` counts the failed runs before this one; `retryable` is
 * false also for a run whose outcome says running it again could repeat
 * what it did.
 */
export function decideRunRetry(category: string, attemptsBefore: number, policy: RunRetryPolicy, random: () => number, retryable = isRetryable(category)): RunRetryDecision {
  const attempts = attemptsBefore + 1;
  if (!retryable) return { kind: 'dead_letter', attempts, reason: 'not_retryable' };
  if (attempts >= policy.maxAttempts) return { kind: 'dead_letter', attempts, reason: 'attempts_used' };
  return { kind: 'retry', attempts, delayMs: fullJitterDelayMs(attempts, policy.baseDelayMs, policy.maxDelayMs, random) };
}
