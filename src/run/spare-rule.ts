/**
 * Spare processes (README.md, "Warm agents"): while an agent has tasks waiting
 * in its inbox, one process of its command is started ahead, the way a warm
 * one is, so its next run is handed a process that is already started instead
 * of waiting for a spawn. Pure: the pool (run/warm-pool.ts) asks, with what
 * the daemon knows now.
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
  /** Spares the pool holds now for every agent, this one's included (asked only when it decides). */
  sparesHeld: () => number;
  /**
   * At most this many spares at once: 2 × max_parallel_runs. A spare stays with its agent while that agent
   * waits its turn (the scheduler's round-robin), so one per run slot would leave the agent claimed next
   * without one; two per slot cover the runs in progress and the ones that start next.
   */
  cap: number;
}

/**
 * Whether the agent should have a spare. A spare it has is kept while tasks
 * wait (it is the next run's, whenever the agent's turn comes), and while a
 * claim is in progress: that claim may have just taken the last task out of
 * the inbox and be about to hand it the spare; the look taken when the claim
 * ends decides. A new one is started only for an agent that is running now,
 * so the agents waiting their turn behind max_parallel_runs do not each hold
 * a process, and never more than `cap` in all.
 */
export function wantsSpare(f: SpareFacts): boolean {
  if (!f.allowed) return false;
  if (f.hasSpare) return f.running || f.queued > 0;
  return f.running && f.queued > 0 && f.sparesHeld() < f.cap;
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
