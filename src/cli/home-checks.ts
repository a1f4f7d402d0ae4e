import { daemonRunning, readDaemonStatus, type DaemonStatusFile } from '../store/daemon-status.js';
import { exists } from '../store/durable.js';
import { hostId, pidAlive } from '../store/host.js';
import type { HomePaths } from '../store/paths.js';

/**
 * Setup mistakes a command catches before it acts, each answered with the
 * next command to type (README "Command line"): a home that does not exist,
 * a folder that is not a home, a second daemon on the same home.
 */

/** A folder with an agentd.yaml (or .yml, .json) or an agents/ folder. */
export async function looksLikeHome(paths: HomePaths): Promise<boolean> {
  for (const candidate of [...paths.daemonConfigCandidates(), paths.agentsDir()]) if (await exists(candidate)) return true;
  return false;
}

/** The shell spelling of a folder in a suggested command. */
export function shellPath(dir: string): string {
  return /^[\w@%+=:,./-]+$/.test(dir) ? dir : `'${dir.replace(/'/g, `'\\''`)}'`;
}

/** Why `start` must not run on this folder, with what to type instead; null when it may. */
export async function startRefusal(paths: HomePaths): Promise<string | null> {
  if (await exists(paths.root)) return null;
  return `${paths.root} does not exist, so there is no home to run. To make one there: agentd init ${shellPath(paths.root)}`;
}

/** Why `validate` has nothing to check here; null for a home. */
export async function notAHome(paths: HomePaths): Promise<string | null> {
  if (await looksLikeHome(paths)) return null;
  const what = (await exists(paths.root)) ? 'is not an agentd home (it has no agentd.yaml and no agents/ folder)' : 'does not exist';
  return `${paths.root} ${what}. To make a home there: agentd init ${shellPath(paths.root)}`;
}

/** The daemon that state/daemon.json says runs on this home now, other than this process; null when none. */
export async function otherRunningDaemon(paths: HomePaths, now = Date.now()): Promise<DaemonStatusFile | null> {
  const status = await readDaemonStatus(paths).catch(() => null);
  if (!status || (status.pid === process.pid && status.host === hostId())) return null;
  return daemonRunning(status, { now, host: hostId(), pidAlive }) ? status : null;
}

/** What to type to stop that other daemon: a kill on this host, a status check elsewhere. */
export function stopOtherCommand(other: DaemonStatusFile, paths: HomePaths): string {
  return other.host === hostId() ? `kill -TERM ${other.pid}` : `agentd status --home ${shellPath(paths.root)}   # it runs on host ${other.host}`;
}

