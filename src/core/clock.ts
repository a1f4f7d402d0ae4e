import { timerDelay } from '../config/delay-bounds.js';

/**
 * Time, injected (docs/architecture.md): the daemon passes `systemClock`,
 * tests a manual clock (test/helpers/clock.ts) whose `advance()` fires the
 * timers that fall due. The scheduler, a run's heartbeat and its runtime
 * limit all arm their timers here, so each is tested without waiting.
 */
export interface Clock {
  /** ms since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** Calls `fn` once, `ms` from now. Any delay is safe: a long one is re-armed in bounded steps. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms` until cancelled. */
  setInterval(fn: () => void, ms: number): Timer;
}

export interface Timer {
  /** Never fires after this; idempotent. */
  cancel(): void;
  /** Starts the delay again from now; re-arms a timer that already fired, but not a cancelled one. */
  refresh(): void;
}

/**
 * A timer on the real clock. Node's setTimeout takes at most 2^31-1 ms and
 * fires a longer one at once (config/delay-bounds.ts), so each armed step is
 * bounded and a step that ends before the deadline arms the next one.
 */
function systemTimer(fn: () => void, ms: number, repeat: boolean): Timer {
  let deadline = 0;
  let handle: NodeJS.Timeout | null = null;
  let cancelled = false;
  const arm = (left: number) => {
    handle = setTimeout(step, timerDelay(left));
  };
  const start = () => {
    if (handle) clearTimeout(handle);
    deadline = Date.now() + ms;
    arm(ms);
  };
  const step = () => {
    handle = null;
    const left = deadline - Date.now();
    if (left > 0) return arm(left);
    if (repeat) start();
    fn();
  };
  start();
  return {
    cancel() {
      cancelled = true;
      if (handle) clearTimeout(handle);
      handle = null;
    },
    refresh() {
      if (cancelled) return;
      // Only the deadline moves: an armed timer fires at its old time, finds the deadline later and arms the
      // rest (step). No clear and set on each refresh, which a run's heartbeat does twice per model call
      // (README.md, Benchmark: P6).
      deadline = Date.now() + ms;
      if (!handle) arm(ms);
    },
  };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        timer.cancel();
        reject(signal!.reason);
      };
      const timer = systemTimer(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        ms,
        false,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  setTimeout: (fn, ms) => systemTimer(fn, ms, false),
  setInterval: (fn, ms) => systemTimer(fn, Math.max(1, ms), true),
};
