import type { Clock, Timer } from '../../src/core/clock.js';

interface Pending {
  at: number;
  fn: () => void;
  /** Set for an interval: the delay it is re-armed with after it fires. */
  every: number | null;
  ms: number;
  cancelled: boolean;
}

/**
 * A clock that moves only when the test says: `advance(ms)` moves time
 * forward and fires, in order of their due time, the timers that fall due on
 * the way (an interval as many times as it falls due). A `sleep` is a timer.
 */
export class ManualClock implements Clock {
  private readonly timers: Pending[] = [];
  /** Every sleep asked for, in order. */
  readonly sleeps: number[] = [];

  constructor(public t = Date.UTC(2026, 0, 1)) {}

  /** Bound, so that it can be handed on alone (`{ now: clock.now }`). */
  readonly now = (): number => this.t;

  /** Timers armed and not yet fired or cancelled. */
  get pending(): number {
    return this.timers.filter((p) => !p.cancelled).length;
  }

  /** Delays (from now) of the armed timers, soonest first. */
  dueIn(): number[] {
    return this.timers.filter((p) => !p.cancelled).map((p) => p.at - this.t).sort((a, b) => a - b);
  }

  advance(ms: number): void {
    const target = this.t + ms;
    for (;;) {
      const next = this.timers.filter((p) => !p.cancelled && p.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      if (next.every === null) this.drop(next);
      else next.at = this.t + next.every;
      next.fn();
    }
    this.t = target;
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.arm(fn, ms, null);
  }

  setInterval(fn: () => void, ms: number): Timer {
    return this.arm(fn, ms, Math.max(1, ms));
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = this.setTimeout(resolve, ms);
      signal?.addEventListener(
        'abort',
        () => {
          timer.cancel();
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  private arm(fn: () => void, ms: number, every: number | null): Timer {
    const delay = Number.isNaN(ms) ? 0 : Math.max(0, ms);
    const pending: Pending = { at: this.t + delay, fn, every, ms: delay, cancelled: false };
    this.timers.push(pending);
    return {
      cancel: () => {
        pending.cancelled = true;
        this.drop(pending);
      },
      refresh: () => {
        if (pending.cancelled) return;
        pending.at = this.t + pending.ms;
        if (!this.timers.includes(pending)) this.timers.push(pending);
      },
    };
  }

  private drop(pending: Pending): void {
    const i = this.timers.indexOf(pending);
    if (i >= 0) this.timers.splice(i, 1);
  }
}

/**
 * A manual clock whose `sleep` returns at once, moving time by the wait: for
 * code under test that only sleeps (the model gateway's backoff), where the
 * test checks the waits asked for rather than driving them.
 */
export class InstantClock extends ManualClock {
  override async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.sleeps.push(ms);
    this.advance(ms);
  }
}

/** How many timers the process holds: a call must leave this where it found it. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
