/**
 * Exponential backoff with full jitter, decided in one place with one
 * rounding (down) for both a model call's retries and a task's next run:
 * uniform in [0, min(max, base·2^(n-1))), which spreads the retries of many
 * agents hitting one provider at once. Pure: the caller passes `random`.
 */
export function fullJitterDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  // Past 2^30 the product is already far above any sane max_delay; the min keeps it finite.
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(30, Math.max(0, attempt - 1)));
  return Math.floor(Math.min(0.999999, Math.max(0, random())) * ceiling);
}
