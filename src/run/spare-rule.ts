/**
 * Spare processes (README.md, "Warm agents"): while an agent has tasks waiting
 * in its inbox and its next claim is near, one process of its command is
 * started ahead, the way a warm one is, so that claim's run is handed a
 * process that is already started instead of waiting for a spawn. Pure: the
 * pool (run/warm-pool.ts) asks, with what the daemon knows now.
 */

export interface SpareFacts {
  /** The definition's `spare` (true by default for the built-in agent only). */
  allowed: boolean;
  /** Task files waiting in the agent's inbox (the daemon's inbox index), beyond the task being run. */
  queued: number;
  /** A claim of the agent is in progress (false in the look taken as a claim ends). */
  running: boolean;
  /** The agent already has its spare, started and waiting. */
  hasSpare: boolean;
  /**
   * Claims that start before the agent's next one: its place in the scheduler's queue, or for an agent
   * running (or whose claim just ended) the queue's length, since it goes to the back (round-robin).
   */
  claimsAhead: number;
  /** How near a claim must be to get a spare: 2 × max_parallel_runs. */
  window: number;
}

/**
 * Whether the agent should have a spare: tasks wait in its inbox and fewer
 * than `window` claims start before its next one. So with a few agents each
 * keeps one, and with many (each waiting its turn behind the others) only
 * those whose turn is near hold one: at most `window` plus one per run in
 * progress. A spare is also kept while a claim of its agent is in progress:
 * that claim may have just taken the last task out of the inbox and be about
 * to hand it the spare; the look taken when the claim ends decides.
 */
export function wantsSpare(f: SpareFacts): boolean {
  if (!f.allowed) return false;
  if (f.hasSpare && f.running) return true;
  return f.queued > 0 && f.claimsAhead < f.window;
}

/**
 * How a claim ended, for its agent's spare: `next` when the agent may run
 * again soon (it ran, settled a task, or parked one), `stalled` when it waits
 * (an outage, a person, another daemon's lock, a failed claim): a stalled
 * agent's spare would wait with it, so it is stopped. Pure.
 */
export function claimEnd(kind: string, parked: boolean): 'next' | 'stalled' {
  return kind === 'ran' || kind === 'settled' || (kind === 'blocked' && parked) ? 'next' : 'stalled';
}
