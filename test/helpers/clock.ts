import type { Clock } from '../../src/run/clock.js';

/**
 * Time that moves only when told. `sleep` records the wait and returns at
 * once, moving the clock by it. `now` is a bound property, so it can be handed
 * on alone (`{ now: clock.now }`).
 */
export class ManualClock implements Clock {
  readonly sleeps: number[] = [];
  constructor(public t = Date.UTC(2026, 0, 1)) {}

  readonly now = (): number => this.t;

  advance(ms: number): void {
    this.t += ms;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw signal.reason;
    this.sleeps.push(ms);
    this.t += ms;
  }
}

/** How many timers the process holds: a call must leave this where it found it. */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}
