import os from 'node:os';

/**
 * This machine's identity in lock owners and run records: AGENTD_HOST_ID, or
 * the hostname. Set AGENTD_HOST_ID where several machines (or containers) share
 * a hostname, so one never mistakes another's live process for its own dead one.
 */
export function hostId(): string {
  return process.env.AGENTD_HOST_ID || os.hostname();
}
