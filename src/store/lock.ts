import { closeSync, constants, fchmodSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import fs from 'node:fs/promises';
import lockfile from 'proper-lockfile';
import type { HomePaths } from './paths.js';
import { ensureDir, stateFileMode } from './durable.js';
import { hostId } from './host.js';
import { letLockGo, lockFs, lockLetGo } from './lock-fs.js';
import { inlineOr } from './inline-calls.js';
import { leaseHeld, leaseTrustMs, parseLeaseOwner, readLeaseFacts, readLeaseOwner, readSettlingFacts, type LeaseOwner } from './lease.js';

/** A held agent lock. `lost` aborts if the lease could not be refreshed (another daemon may take over). */
export interface AgentLock {
  /** Releases the lock, unless another holder has taken it over meanwhile (then its lock is left alone). */
  release(): Promise<void>;
  lost: AbortSignal;
  /** True while this holder's lease still stands (store/lease.ts): checked before each durable write of a run. */
  held(): Promise<boolean>;
}

/** How long after taking a lock every check of its lease reads the owner file, whatever the last one found. */
const LEASE_SETTLE_MS = 1000;

/** Who holds an agent's lock: lets a daemon on the same host reclaim a dead holder's lock at once. */
type LockOwner = LeaseOwner;

function ownerFile(paths: HomePaths, agent: string): string {
  return `${paths.stateDir(agent)}.owner`;
}

/**
 * Lock state/<agent> (proper-lockfile: a lease refreshed every stale/2, taken
 * over by another daemon once it is `staleMs` old). Returns null when another
 * live process holds it. A lock whose recorded holder is a dead process on
 * this host is taken at once instead of after the stale time: that is the
 * common restart after a crash.
 */
export async function tryLockAgent(paths: HomePaths, agent: string, staleMs: number): Promise<AgentLock | null> {
  const dir = paths.stateDir(agent);
  const lost = new AbortController();
  const options = {
    stale: staleMs,
    update: Math.max(1000, Math.floor(staleMs / 2)),
    retries: 0,
    realpath: false,
    fs: lockFs,
    // The default throws from a timer and would kill the daemon. The refresh has stopped: a lock let go is done.
    onCompromised: (err: Error) => {
      lockLetGo(`${dir}.lock`);
      lost.abort(err);
    },
  };
  let release: () => Promise<void>;
  let lockedAt = performance.now();
  let lockedAtWall = Date.now();
  // state/<agent> is made when the lock finds state/ missing, not checked before every claim (README.md,
  // Benchmark: P3); the writes into it make it when they find it missing.
  const lock = () =>
    lockfile.lock(dir, options).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await ensureDir(dir);
      return lockfile.lock(dir, options);
    });
  try {
    release = await lock();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err;
    const deadOwner = await deadHolderHere(paths, agent);
    if (!deadOwner) return null;
    // proper-lockfile only unlocks its own locks: remove the dead holder's folder ourselves, unless
    // another process took the lock over meanwhile (it writes its owner file right after).
    if (!(await sameOwner(paths, agent, deadOwner))) return null;
    await fs.rmdir(`${dir}.lock`).catch(() => undefined);
    try {
      lockedAt = performance.now();
      lockedAtWall = Date.now();
      release = await lockfile.lock(dir, options);
    } catch (again) {
      if ((again as NodeJS.ErrnoException).code === 'ELOCKED') return null; // another process was quicker
      throw again;
    }
  }
  const me = await takeOwnerFile(ownerFile(paths, agent));
  let released = false;
  const held = leaseCheck({ ownerFile: ownerFile(paths, agent), lockDir: `${dir}.lock`, me, lost: lost.signal, staleMs, lockedAt, lockedAtWall });
  return {
    lost: lost.signal,
    held,
    async release() {
      if (released) return;
      released = true;
      const owner = await readOwner(paths, agent);
      if (owner && (owner.host !== me.host || owner.pid !== me.pid || owner.generation !== me.generation)) {
        // Another holder's name: the folder may be theirs, so it stays; but our refresh must stop (store/lock-fs.ts).
        if (!lost.signal.aborted) letLockGo(`${dir}.lock`);
        return;
      }
      await release().catch(() => undefined); // already compromised or removed: nothing left to release
    },
  };
}

/** Where and since when a lock is held, for its lease checks. */
interface LeaseCheckOf {
  ownerFile: string;
  lockDir: string;
  me: LockOwner;
  lost: AbortSignal;
  staleMs: number;
  /** performance.now() and Date.now() when the lock was taken. */
  lockedAt: number;
  lockedAtWall: number;
}

/** The lock's `held()`: true while this holder's lease still stands. */
function leaseCheck(at: LeaseCheckOf): () => Promise<boolean> {
  // Each durable write of a run checks the lease (README.md, "Several daemons on one home"). A check
  // that found it held vouches for it until leaseTrustMs later, so the steps of a run in between
  // cost no file reads (README.md, Benchmark: P1); a lock reported lost is seen at once.
  // Not in the lease's first second, though: two daemons that both found the last holder dead can
  // both take the lock within milliseconds, and the loser learns it from the owner file.
  // In that second the owner file is all a check reads (lease.ts readSettlingFacts), and checks asked
  // for while one is reading share its answer.
  const settledAt = at.lockedAt + Math.min(LEASE_SETTLE_MS, at.staleMs / 4);
  let trustedUntil = 0;
  let checking: Promise<boolean> | null = null;
  const check = async () => {
    const checkedAt = performance.now();
    const facts =
      checkedAt < settledAt
        ? await readSettlingFacts(at.ownerFile, at.me, at.lost.aborted, at.lockedAtWall, at.staleMs, Date.now)
        : await readLeaseFacts(at.ownerFile, at.lockDir, at.me, at.lost.aborted, at.staleMs, Date.now);
    if (checkedAt >= settledAt) trustedUntil = checkedAt + leaseTrustMs(facts);
    return leaseHeld(facts);
  };
  return async () => {
    if (at.lost.aborted) return false;
    if (performance.now() < trustedUntil) return true;
    checking ??= check().finally(() => (checking = null));
    return checking;
  };
}

/**
 * This holder's name in the owner file, one generation past the last
 * holder's: the file is read and rewritten in place through one open, where
 * a read, a write and a chmod each opened it by name (README.md, Benchmark:
 * P3). Rewritten in place, as a write with truncation did: a holder that
 * keeps reading it sees the new name. Written first and cut to its length
 * after: a truncation to zero makes ext4 flush the file at its close
 * (auto_da_alloc), 0.8 ms per claim in a profile of P2c.
 */
function takeOwnerFile(file: string): Promise<LockOwner> {
  return inlineOr(() => takeOwnerFileSync(file), () => takeOwnerFilePooled(file)); // store/inline-calls.ts
}

function nextOwner(previous: string): LockOwner {
  return { host: hostId(), pid: process.pid, generation: (parseLeaseOwner(previous)?.generation ?? 0) + 1 };
}

async function takeOwnerFilePooled(file: string): Promise<LockOwner> {
  const handle = await fs.open(file, constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK, stateFileMode());
  try {
    const me = nextOwner(await handle.readFile('utf8'));
    const text = Buffer.from(JSON.stringify(me));
    await handle.write(text, 0, text.length, 0);
    await handle.truncate(text.length);
    await handle.chmod(stateFileMode()); // the mode as configured: O_CREAT's is the umask's, and an older file keeps its own
    return me;
  } finally {
    await handle.close();
  }
}

/** takeOwnerFile with the sync calls. */
function takeOwnerFileSync(file: string): LockOwner {
  const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_NONBLOCK, stateFileMode());
  try {
    const me = nextOwner(readFileSync(fd, 'utf8'));
    const text = Buffer.from(JSON.stringify(me));
    writeSync(fd, text, 0, text.length, 0);
    ftruncateSync(fd, text.length);
    fchmodSync(fd, stateFileMode());
    return me;
  } finally {
    closeSync(fd);
  }
}

async function readOwner(paths: HomePaths, agent: string): Promise<LockOwner | null> {
  return readLeaseOwner(ownerFile(paths, agent));
}

/** The recorded holder, when it is a dead process on this host; null otherwise (wait for the lease to go stale). */
async function deadHolderHere(paths: HomePaths, agent: string): Promise<LockOwner | null> {
  const owner = await readOwner(paths, agent);
  if (!owner || owner.host !== hostId() || owner.pid === process.pid) return null;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH' ? owner : null;
  }
  return (await isZombie(owner.pid)) ? owner : null;
}

/** A killed process whose parent has not reaped it yet still answers kill(pid, 0). */
async function isZombie(pid: number): Promise<boolean> {
  try {
    return /^State:\s+Z/m.test(await fs.readFile(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false; // no /proc (not Linux): trust kill(pid, 0)
  }
}

async function sameOwner(paths: HomePaths, agent: string, owner: LockOwner): Promise<boolean> {
  const now = await readOwner(paths, agent);
  return now !== null && now.host === owner.host && now.pid === owner.pid;
}
