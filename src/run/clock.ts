import { timerDelay } from '../config/delay-bounds.js';

/** Time, injected: tests pass a manual clock, the daemon the real one. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      // Bounded (config/delay-bounds.ts): a longer sleep is one of several armed timers.
      let timer: NodeJS.Timeout;
      const deadline = Date.now() + ms;
      const arm = () => {
        const left = deadline - Date.now();
        if (!(left > 0)) {
          signal?.removeEventListener('abort', onAbort);
          resolve();
          return;
        }
        timer = setTimeout(arm, timerDelay(left));
      };
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      timer = setTimeout(arm, timerDelay(ms));
    }),
};
