/**
 * The error that ended each agent's last failed claim in this process, so
 * the history line of the run it cut short names it (core/claim-failure.ts)
 * instead of saying the daemon stopped. In memory only: after a restart the
 * daemon did stop.
 */
const lastErrors = new Map<string, { code: string | null; message: string }>();

export function noteClaimError(agent: string, err: unknown): void {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? null;
  lastErrors.set(agent, { code: typeof code === 'string' ? code : null, message: err instanceof Error ? err.message : String(err) });
}

export function lastClaimError(agent: string): { code: string | null; message: string } | null {
  return lastErrors.get(agent) ?? null;
}
