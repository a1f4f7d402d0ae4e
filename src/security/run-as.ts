import fs from 'node:fs';
import { findOnPath, type RunAs } from './sandbox.js';

/**
 * `run_as: user[:group]`: the account an agent's processes run under. Names
 * are looked up in /etc/passwd and /etc/group when the definition loads (a
 * user that does not exist is a config error, not a failed spawn); numbers
 * are taken as they are. The group defaults to the user's primary group.
 */

/** uid and primary gid of `name` in passwd text, or null. */
export function lookupUser(passwd: string, name: string): { uid: number; gid: number } | null {
  for (const line of passwd.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 4) return { uid: Number(fields[2]), gid: Number(fields[3]) };
  }
  return null;
}

/** gid of `name` in group text, or null. */
export function lookupGroup(group: string, name: string): number | null {
  for (const line of group.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === name && fields.length >= 3) return Number(fields[2]);
  }
  return null;
}

export interface AccountFiles {
  passwd: string;
  group: string;
}

/** Resolve `spec` against the account files; a string is the problem, naming the field `field`. */
export function resolveRunAs(spec: string, files: AccountFiles, field = 'run_as'): RunAs | string {
  const [user, group] = spec.split(':') as [string, string | undefined];
  const numeric = /^\d+$/;
  const account = numeric.test(user) ? null : lookupUser(files.passwd, user);
  if (!numeric.test(user) && !account) return `${field} ${JSON.stringify(spec)}: there is no user ${JSON.stringify(user)} on this machine (/etc/passwd)`;
  const uid = account ? account.uid : Number(user);
  let gid = account ? account.gid : Number(user);
  if (group !== undefined) {
    const found = numeric.test(group) ? Number(group) : lookupGroup(files.group, group);
    if (found === null) return `${field} ${JSON.stringify(spec)}: there is no group ${JSON.stringify(group)} on this machine (/etc/group)`;
    gid = found;
  }
  if (uid === 0) return `${field} ${JSON.stringify(spec)}: refusing to run agents as root; name an unprivileged account`;
  return { spec, uid, gid };
}

/** True when effective capabilities (hex CapEff of /proc/self/status) include CAP_SETUID (7) and CAP_SETGID (6). */
export function hasSetIdCaps(status: string): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (!hex) return false;
  const caps = BigInt(`0x${hex}`);
  return (caps & (1n << 6n)) !== 0n && (caps & (1n << 7n)) !== 0n;
}

/** Why this process cannot switch to `runAs`, or null when it can (root, or CAP_SETUID and CAP_SETGID). */
export function switchProblem(runAs: RunAs, field = 'run_as'): string | null {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0 || uid === runAs.uid) return null;
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    // not Linux: no capabilities to read
  }
  if (hasSetIdCaps(status)) return null;
  return `${field} ${JSON.stringify(runAs.spec)}: the daemon (uid ${uid}) cannot switch users; run it as root or give it CAP_SETUID and CAP_SETGID (README "Security")`;
}

/** True when the CapEff or CapAmb line of status text is not all zero. */
export function holdsCapabilities(status: string): boolean {
  return /^Cap(Eff|Amb):\s*0*[1-9a-f]/m.test(status);
}

/**
 * setpriv's path when this process is not root but holds capabilities, which its
 * children would inherit (ambient ones survive exec); 'setpriv' when it is missing,
 * so a spawn fails rather than leak them. Null when there is nothing to drop.
 */
export function capabilitiesToDrop(env: NodeJS.ProcessEnv = process.env): string | null {
  if ((process.getuid?.() ?? 0) === 0) return null;
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return null; // not Linux
  }
  return holdsCapabilities(status) ? (findOnPath('setpriv', env) ?? 'setpriv') : null;
}

/** The account files of this machine; empty text where one cannot be read. */
export function readAccountFiles(): AccountFiles {
  const read = (file: string): string => {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return '';
    }
  };
  return { passwd: read('/etc/passwd'), group: read('/etc/group') };
}
