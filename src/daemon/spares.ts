import type { ClaimResult } from '../run/runner.js';
import { claimEnd } from '../run/spare-rule.js';
import type { SpareDemand, WarmPool } from '../run/warm-pool.js';
import type { DaemonConfig } from '../config/types.js';
import type { InboxIndex } from '../store/inbox-index.js';
import type { Scheduler } from './scheduler.js';

/**
 * The daemon's side of spare processes (README.md "Warm agents"; the rule in
 * run/spare-rule.ts, the processes in run/warm-pool.ts): what a spare
 * follows, and the look taken as each claim ends.
 */

/** How near an agent's next claim must be for it to get a spare. */
export function spareWindow(config: DaemonConfig): number {
  return 2 * config.maxParallelRuns;
}

/** The inbox index and the scheduler, as the pool asks; none without the watcher (the index then does not follow the inboxes). */
export function spareDemand(watching: boolean, index: InboxIndex, scheduler: () => Scheduler, window: () => number): SpareDemand | undefined {
  if (!watching) return undefined;
  return {
    queued: (agent) => index.size(agent) ?? 0,
    running: (agent) => scheduler().isRunning(agent),
    claimsAhead: (agent) => scheduler().claimsAhead(agent),
    window,
  };
}

/** The claim's result, after the agent's spare has followed how it ended: one no task waits for is stopped. */
export function reviewOnClaimEnd(pool: WarmPool, agent: string, claim: Promise<ClaimResult>): Promise<ClaimResult> {
  return claim.then(
    (result) => {
      pool.review(agent, claimEnd(result.kind, result.kind === 'blocked' && result.parked === true));
      return result;
    },
    (err: unknown) => {
      pool.review(agent, 'stalled');
      throw err;
    },
  );
}
