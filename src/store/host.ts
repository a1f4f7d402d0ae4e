import os from 'node:os';

/**
 * This machine's identity in lock owners and run records: AGENTD_HOST_ID, or
 * the hostname. Set AGENTD_HOST_ID where several machines (or containers) share
 * a hostname, so one never mistakes another's live process for its own dead one.
 */
export function hostId(): string {
  return process.env.AGENTD_HOST_ID || os.hostname();
}

/** True while `pid` is a process of this host (EPERM: alive, someone else's). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
