/**
 * A claim that failed on the home's file system (README "Shutdown and
 * crashes"): which failures pass by themselves, how soon to look again, and
 * what the history line of a run that this failure ended says. Pure.
 */

/** A resource the system runs out of and gets back without a person changing agentd's files: room, quota, descriptors. */
const RESOURCE_CODES = new Set(['ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE']);

/** The first look again comes this soon after a failed claim, ms. */
export const CLAIM_RETRY_FIRST_MS = 100;
/** Never longer apart than this while the failure lasts, so work resumes within it once writes succeed, ms. */
export const CLAIM_RETRY_MAX_MS = 2000;

/** The errno code (ENOSPC, ...) when `err`, or an error it was caused by, is a resource running out; else null. */
export function resourceErrorCode(err: unknown): string | null {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code !== undefined && RESOURCE_CODES.has(code)) return code;
    current = current.cause;
  }
  return null;
}

/** How long to wait before the `failures`-th (1-based) look again: doubling from CLAIM_RETRY_FIRST_MS up to CLAIM_RETRY_MAX_MS. */
export function claimRetryDelayMs(failures: number): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 20);
  return Math.min(CLAIM_RETRY_FIRST_MS * 2 ** exponent, CLAIM_RETRY_MAX_MS);
}

export interface InterruptedReason {
  category: string;
  message: string;
}

/**
 * Why a run that left an active_run behind ended. Only a run of another
 * daemon process (or host) ended because a daemon stopped; one of this very
 * process ended on an error of its claim (`lastError`), which is named.
 */
export function interruptedReason(run: { host: string | null; daemon_pid: number | null }, self: { host: string; pid: number }, lastError: { code: string | null; message: string } | null): InterruptedReason {
  const ours = run.host === self.host && run.daemon_pid === self.pid;
  if (!ours) return { category: 'crash', message: 'the daemon stopped during the run' };
  const code = lastError?.code ?? null;
  const category = code === 'ENOSPC' || code === 'EDQUOT' ? 'disk_full' : 'crash';
  return { category, message: `the daemon could not go on with the run: ${lastError?.message ?? 'an error of its own (its log says "claim failed")'}` };
}
