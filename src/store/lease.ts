import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import { inlineOr } from './inline-calls.js';
import { readIfExists } from './read-file.js';
/**
 * The lease behind an agent lock (README.md, "Several daemons on one home").
 * proper-lockfile tells a holder it lost its lock only when its refresh timer
 * runs, which a frozen process (SIGSTOP, a stalled VM) does late: after it
 * continues, its pending I/O may run first. So every durable write of a run
 * first checks the lease: the owner file still names this holder and its
 * generation (a takeover writes generation + 1), and the lock folder's mtime
 * is younger than lock_stale (past that, another daemon may take it at any
 * moment). A check and the write after it are two steps, so a takeover can
 * still land between them, but only within milliseconds of a fresh lease,
 * not after a freeze of any length.
 */

export interface LeaseOwner {
  host: string;
  pid: number;
  /** Counts takeovers of this agent's lock; each new holder writes the one after the last. */
  generation: number;
}

export interface LeaseFacts {
  /** proper-lockfile reported the lock compromised. */
  lost: boolean;
  /** The owner file as it is now, null when missing or unreadable. */
  owner: LeaseOwner | null;
  me: LeaseOwner;
  /** The lock folder's mtime, null when it is gone. */
  lockMtimeMs: number | null;
  nowMs: number;
  staleMs: number;
}

/** Pure: may this holder still write? */
export function leaseHeld(f: LeaseFacts): boolean {
  if (f.lost || f.owner === null || f.lockMtimeMs === null) return false;
  if (f.owner.host !== f.me.host || f.owner.pid !== f.me.pid || f.owner.generation !== f.me.generation) return false;
  return f.nowMs - f.lockMtimeMs <= f.staleMs;
}

/**
 * Pure: how long, from the moment `f` was read, the lease stays held without
 * reading it again. Another daemon can take the lock over only once its folder's
 * mtime is lock_stale old (proper-lockfile; a same-host holder only when this
 * process is dead), and it writes its owner file after that. So a lease seen
 * held, with the folder last refreshed at m, cannot change hands before
 * m + lock_stale; half of that is kept as the margin for clocks and the refresh
 * timer. The window is measured on a monotonic clock, which runs on while the
 * process is frozen: after a freeze the lease is read again. 0 when not held.
 */
export function leaseTrustMs(f: LeaseFacts): number {
  if (!leaseHeld(f) || f.lockMtimeMs === null) return 0;
  return Math.max(0, f.lockMtimeMs + f.staleMs / 2 - f.nowMs);
}

/** A durable write was refused because the lease is gone: the run is abandoned, not failed. */
export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  readonly code = 'lease_lost';
  runId: string | null = null;
  constructor(readonly agent: string) {
    super(`the lock of agent ${agent} is no longer held by this daemon`);
  }

  /** The same error, naming the run it stopped. */
  during(runId: string): this {
    this.runId = runId;
    return this;
  }
}

/** The facts leaseHeld decides on, read from the owner file and the lock folder. */
export async function readLeaseFacts(ownerFile: string, lockDir: string, me: LeaseOwner, lost: boolean, staleMs: number, nowMs: () => number): Promise<LeaseFacts> {
  const statLock = inlineOr(() => statSync(lockDir, { throwIfNoEntry: false }) ?? null, () => fs.stat(lockDir)).catch(() => null);
  const [owner, lockStat] = await Promise.all([readLeaseOwner(ownerFile), statLock]);
  return { lost, owner, me, lockMtimeMs: lockStat ? lockStat.mtimeMs : null, nowMs: nowMs(), staleMs };
}

/**
 * The facts in the lease's first second, from the owner file alone: the lock
 * folder was made by this holder less than a second ago, so its mtime is
 * younger than lock_stale; another daemon that removed it and locked in its
 * place writes its owner file next, which is what this read finds
 * (README.md, Benchmark: P3).
 */
export async function readSettlingFacts(ownerFile: string, me: LeaseOwner, lost: boolean, lockedAtMs: number, staleMs: number, nowMs: () => number): Promise<LeaseFacts> {
  const owner = await readLeaseOwner(ownerFile);
  return { lost, owner, me, lockMtimeMs: lockedAtMs, nowMs: nowMs(), staleMs };
}

/** The owner file's holder; null when it is missing, unreadable or names none (a FIFO put there is refused, not waited on). */
export async function readLeaseOwner(ownerFile: string): Promise<LeaseOwner | null> {
  try {
    const bytes = await readIfExists(ownerFile, 64 * 1024);
    return bytes === null ? null : parseLeaseOwner(bytes.toString('utf8'));
  } catch {
    return null;
  }
}

/** Pure: the owner file's text as a holder, or null when it names none. */
export function parseLeaseOwner(text: string): LeaseOwner | null {
  try {
    const value = JSON.parse(text) as Partial<LeaseOwner>;
    if (typeof value.host !== 'string' || typeof value.pid !== 'number') return null;
    return { host: value.host, pid: value.pid, generation: typeof value.generation === 'number' ? value.generation : 0 };
  } catch {
    return null;
  }
}
