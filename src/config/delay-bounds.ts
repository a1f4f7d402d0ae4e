/**
 * Bounds on waits (README "Retries"). Node's setTimeout takes at most
 * 2^31-1 ms (about 24.8 days); a longer delay fires after 1 ms instead, so a
 * wait computed from a config or a date in a file would turn into a busy loop.
 * Every wait the daemon arms goes through `timerDelay`, and a longer wait is
 * re-armed when the shorter timer fires. Pure.
 */

/** Node's largest setTimeout delay. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest single timer the daemon arms; a longer wait is re-armed after it. */
export const MAX_ARMED_MS = 24 * 60 * 60 * 1000;
/** The largest `retry.max_delay` (and `base_delay`) a config may name. */
export const MAX_RETRY_DELAY_MS = 24 * 60 * 60 * 1000;

/** A delay safe to give setTimeout: finite, at least 0, at most MAX_ARMED_MS. */
export function timerDelay(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(MAX_ARMED_MS, Math.max(0, ms));
}

/** Problems with a retry block's delays, each naming the field. */
export function retryDelayProblems(prefix: string, raw: { base_delay?: string | number; max_delay?: string | number } | undefined, resolved: { baseDelayMs: number; maxDelayMs: number }): string[] {
  const problems: string[] = [];
  if (raw?.base_delay !== undefined && !(resolved.baseDelayMs <= MAX_RETRY_DELAY_MS)) problems.push(`${prefix}.base_delay ${JSON.stringify(raw.base_delay)} is longer than the largest retry delay, 24h`);
  if (raw?.max_delay !== undefined && !(resolved.maxDelayMs <= MAX_RETRY_DELAY_MS)) problems.push(`${prefix}.max_delay ${JSON.stringify(raw.max_delay)} is longer than the largest retry delay, 24h`);
  return problems;
}
