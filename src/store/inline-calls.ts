import { performance } from 'node:perf_hooks';

/**
 * Short file calls on the event loop, while they stay short.
 *
 * An async file call goes through libuv's thread pool: about 50 µs of
 * hand-off and wake-up, in CPU and in wait, for a call that takes 5 µs when
 * made synchronously on a local disk. A claim makes several dozen of them
 * (most of them opens of files that are not there) before its agent gets the
 * start message, one after another, so the hand-offs were most of the pick-up
 * time with a warm agent and a share of the daemon's CPU per task (README.md,
 * Benchmark: P2c, P3). So the short calls on that path (open, stat, read and
 * close of small files, readdir, link, unlink, the lock folder's mkdir) run
 * synchronously while they are fast.
 *
 * A call on the event loop stops every other run while it waits, so the gate
 * shuts for `backoffMs` after one call took over `slowMs` (a network
 * filesystem, a disk under load): those calls go to the thread pool and the
 * event loop goes on. Inline calls may also take at most `windowShareMs` of
 * every `windowMs`. A filesystem that stalls all at once, while it looked
 * fast, still holds the event loop for that one call. fsync and fdatasync are
 * not short calls: store/sync-choice.ts decides for them.
 */

export interface InlineLimits {
  slowMs: number;
  backoffMs: number;
  windowShareMs: number;
  windowMs: number;
}

export const INLINE_LIMITS: InlineLimits = { slowMs: 1, backoffMs: 1000, windowShareMs: 10, windowMs: 100 };

/** Pure: whether the next short call may run on the event loop, from the times of those before it. */
export class InlineGate {
  private shutUntilMs = -Infinity;
  private windowStartMs = -Infinity;
  private windowSpentMs = 0;

  constructor(private readonly limits: InlineLimits = INLINE_LIMITS) {}

  /** `nowMs`: a monotonic clock. */
  open(nowMs: number): boolean {
    if (nowMs < this.shutUntilMs) return false;
    if (nowMs - this.windowStartMs >= this.limits.windowMs) {
      this.windowStartMs = nowMs;
      this.windowSpentMs = 0;
    }
    return this.windowSpentMs < this.limits.windowShareMs;
  }

  /** An inline call took `ms`, ending at `endMs`. */
  took(ms: number, endMs: number): void {
    this.windowSpentMs += ms;
    if (ms > this.limits.slowMs) this.shutUntilMs = endMs + this.limits.backoffMs;
  }
}

/** One for the daemon: the event loop it protects is one too. */
let gate = new InlineGate();

/** Tests: put another gate in place (a shut one sends every call to the thread pool); returns the one it replaced. */
export function useInlineGate(next: InlineGate): InlineGate {
  const previous = gate;
  gate = next;
  return previous;
}

/** A gate that never opens: every call on the thread pool. */
export function shutGate(): InlineGate {
  return new InlineGate({ ...INLINE_LIMITS, windowShareMs: 0 });
}

/**
 * `inline` (synchronous calls only) when the gate is open, timed for the next
 * choice; else `pooled`, the same work through the thread pool. Either way a
 * promise with the same answer.
 */
export function inlineOr<T>(inline: () => T, pooled: () => Promise<T>): Promise<T> {
  const start = performance.now();
  if (!gate.open(start)) return pooled();
  try {
    return Promise.resolve(inline());
  } catch (err) {
    return Promise.reject(err as Error);
  } finally {
    const end = performance.now();
    gate.took(end - start, end);
  }
}
