/**
 * Where a held file's fdatasync runs: on the event loop (inline) or on the
 * thread pool. Pure: the caller measures and reports; this only decides.
 *
 * Inline is faster for the one waiting: the thread pool's hand-off and the
 * wake-up of the event loop afterwards cost more than a fast disk's
 * fdatasync itself (README.md, Benchmark: P6 and the proxy floor). But an
 * inline fdatasync stops every other run while the disk answers, so it is
 * used only while the disk answers fast and while inline syncs have taken
 * a small share of the recent time; otherwise the thread pool waits for the
 * disk while the event loop goes on.
 */

export interface SyncChoiceLimits {
  /** Inline only while the disk's recent inline fdatasyncs average at most this. */
  slowMs: number;
  /** Inline only while inline syncs took at most this much of the current window. */
  windowShareMs: number;
  windowMs: number;
  /** While the disk is slow, one fdatasync in this many is inline again, to notice when it is fast again. */
  probeEvery: number;
}

export const SYNC_CHOICE_LIMITS: SyncChoiceLimits = { slowMs: 1, windowShareMs: 20, windowMs: 100, probeEvery: 100 };

/** Weight of the newest inline fdatasync in the running average. */
const NEWEST_WEIGHT = 0.2;

export class SyncChoice {
  private averageMs: number | null = null;
  private windowStartMs = -Infinity;
  private windowSpentMs = 0;
  private sinceProbe = 0;

  constructor(private readonly limits: SyncChoiceLimits = SYNC_CHOICE_LIMITS) {}

  /** True when the next fdatasync should run inline; `nowMs` is a monotonic clock. */
  inline(nowMs: number): boolean {
    if (nowMs - this.windowStartMs >= this.limits.windowMs) {
      this.windowStartMs = nowMs;
      this.windowSpentMs = 0;
    }
    if (this.windowSpentMs >= this.limits.windowShareMs) return false;
    if (this.averageMs === null || this.averageMs <= this.limits.slowMs) return true;
    this.sinceProbe += 1;
    if (this.sinceProbe < this.limits.probeEvery) return false;
    this.sinceProbe = 0;
    return true;
  }

  /** An inline fdatasync took `ms`. */
  tookInline(ms: number): void {
    this.windowSpentMs += ms;
    this.averageMs = this.averageMs === null ? ms : (1 - NEWEST_WEIGHT) * this.averageMs + NEWEST_WEIGHT * ms;
  }
}
