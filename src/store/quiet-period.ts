/**
 * The quiet period (README "Tasks"): a task file or outbox.json that does not
 * parse is looked at again until it has not changed for this long, and only
 * then refused, so a slow writer (a network copy, an editor on a slow disk,
 * a script that pauses mid-write) never has its task dead-lettered
 * half-written. `quiet_period` in agentd.yaml; set by the daemon from its
 * config, the default elsewhere.
 */

/** Default quiet period: well above the pauses of ordinary slow writers. */
export const DEFAULT_QUIET_PERIOD_MS = 5000;

let quietMs = DEFAULT_QUIET_PERIOD_MS;

export function setQuietPeriod(ms: number): void {
  quietMs = ms;
}

export function quietPeriodMs(): number {
  return quietMs;
}
