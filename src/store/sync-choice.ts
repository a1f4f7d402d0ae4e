import { performance } from 'node:perf_hooks';

/**
 * Where an fsync or fdatasync runs: on the event loop (inline) or on the
 * thread pool. SyncChoice is pure: the caller measures and reports; it only
 * decides (syncedInline, below, is the caller for most).
 *
 * This decides for a held file's fdatasync (store/held-append.ts), and for
 * the whole of a replaced file's write and a folder's fsync
 * (store/durable.ts writeFileDurable, fsyncDir), whose few short calls
 * around the fsync would otherwise each cost a hand-off too.
 *
 * Inline is faster for the one waiting: the thread pool's hand-off and the
 * wake-up of the event loop afterwards can cost more than a fast disk's
 * fdatasync itself (README.md, Benchmark: P6 and the proxy floor). But an
 * inline fdatasync stops every other run while the disk answers, so it is
 * used only while recent fdatasyncs (inline, and on the pool with its
 * hand-off) averaged at most `slowMs`, and while inline ones have taken at
 * most `windowShareMs` of the current `windowMs`; otherwise the thread pool
 * waits for the disk while the event loop goes on, and its timings bring
 * inline back once the disk is fast again. A disk that stalls all at once,
 * while it looked fast, still holds the event loop for that one fdatasync.
 */

export interface SyncChoiceLimits {
  slowMs: number;
  windowShareMs: number;
  windowMs: number;
}

export const SYNC_CHOICE_LIMITS: SyncChoiceLimits = { slowMs: 2, windowShareMs: 20, windowMs: 100 };

/** Weight of the newest fdatasync in the running average. */
const NEWEST_WEIGHT = 0.2;

export class SyncChoice {
  private averageMs: number | null = null;
  private windowStartMs = -Infinity;
  private windowSpentMs = 0;

  constructor(private readonly limits: SyncChoiceLimits = SYNC_CHOICE_LIMITS) {}

  /** True when the next fdatasync should run inline; `nowMs` is a monotonic clock. */
  inline(nowMs: number): boolean {
    if (nowMs - this.windowStartMs >= this.limits.windowMs) {
      this.windowStartMs = nowMs;
      this.windowSpentMs = 0;
    }
    if (this.windowSpentMs >= this.limits.windowShareMs) return false;
    return this.averageMs === null || this.averageMs <= this.limits.slowMs;
  }

  /** An fdatasync took `ms`, on the event loop (`inline`) or on the thread pool, hand-off included. */
  took(ms: number, inline: boolean): void {
    if (inline) this.windowSpentMs += ms;
    this.averageMs = this.averageMs === null ? ms : (1 - NEWEST_WEIGHT) * this.averageMs + NEWEST_WEIGHT * ms;
  }
}

/** One for the daemon: the event loop it protects is one too. */
export const diskSyncs = new SyncChoice();

/**
 * `inline` (synchronous calls, an fsync among them) when diskSyncs says so,
 * else `pooled`, the same work through the thread pool. Either way a promise
 * with the same answer. Timed for the next choice, `pooled` only when it is
 * one fsync: the hand-offs of several calls would read as a slow disk.
 */
export function syncedInline<T>(inline: () => T, pooled: () => Promise<T>, timePooled = true): Promise<T> {
  const start = performance.now();
  if (!diskSyncs.inline(start)) return timePooled ? pooled().finally(() => diskSyncs.took(performance.now() - start, false)) : pooled();
  try {
    return Promise.resolve(inline());
  } catch (err) {
    return Promise.reject(err as Error);
  } finally {
    diskSyncs.took(performance.now() - start, true);
  }
}
