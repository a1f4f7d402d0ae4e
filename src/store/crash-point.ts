/**
 * Test-only crash injection (README.md, Development): when the environment
 * variable AGENTD_TEST_CRASH_AT names a point, the daemon kills itself with
 * SIGKILL there, so a test can put a kill -9 between two writes that no
 * outside signal could hit reliably. Unset (always, outside tests), it costs
 * one environment lookup.
 */
export type CrashPoint = 'promote-linked' | 'park-linked' | 'unpark-linked';

export function crashPoint(point: CrashPoint): void {
  if (process.env.AGENTD_TEST_CRASH_AT === point) process.kill(process.pid, 'SIGKILL');
}
