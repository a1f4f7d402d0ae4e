import fs from 'node:fs';
import { findOnPath } from './sandbox.js';

/**
 * bwrap under the hardened unit with `ProcSubset=pid` (deploy/agentd-sandbox.conf,
 * README "Security"). That setting leaves the daemon a /proc of process folders
 * only, which is what lets `ProtectKernelTunables` and `ProtectKernelLogs` stay on
 * with a sandbox: nothing is mounted over parts of it, so the kernel still lets an
 * unprivileged user namespace mount a fresh /proc. But bwrap reads
 * /proc/sys/kernel/overflowuid before anything else and stops when it is missing.
 * So bwrap starts inside util-linux `unshare`: a user, mount and PID namespace of
 * its own with a fresh full /proc that only bwrap sees (the sandbox gets bwrap's
 * own /proc on top of it). --kill-child: the namespace dies with unshare.
 */

/** The file whose absence says this process has a pid-only /proc. */
export const OVERFLOW_UID = '/proc/sys/kernel/overflowuid';

/** The argv that goes before bwrap's, or [] when this /proc is whole (or unshare is missing: bwrap then fails loudly). */
export function procWrapper(unshare: string | null, procIsWhole: boolean): string[] {
  if (procIsWhole || unshare === null) return [];
  return [unshare, '--user', '--map-current-user', '--mount', '--pid', '--fork', '--kill-child', '--mount-proc', '--'];
}

/** procWrapper for this process: looks at its /proc and its PATH. */
export function hostProcWrapper(env: NodeJS.ProcessEnv = process.env): string[] {
  return procWrapper(findOnPath('unshare', env), fs.existsSync(OVERFLOW_UID));
}
