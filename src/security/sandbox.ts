import fs from 'node:fs';
import { PACKAGE_ROOT, PYTHON_MODULE_DIR } from '../config/installation.js';
import path from 'node:path';
import { BUILTIN_AGENT_SCRIPT } from '../builtin/location.js';
import { HomePaths } from '../store/paths.js';

/**
 * How an agent or tool process is confined (README "Security"): under
 * bubblewrap (`sandbox:`) and/or as another account (`run_as:`). The pure
 * part turns a command and a policy into the argv to spawn; the daemon's
 * process-wide part (what to hide, where bwrap is) is set when agentd.yaml
 * loads, like the secret censor, because the spawn sites exist before it.
 */

/** A resolved `run_as: user[:group]`. */
export interface RunAs {
  /** As written, for messages. */
  spec: string;
  uid: number;
  gid: number;
}

/** What one agent's processes get: set on the definition, applied at every spawn. */
export interface Confinement {
  sandbox: boolean;
  runAs: RunAs | null;
}

/** The daemon's side of the policy: where bwrap is and what no sandbox may see besides the home. */
export interface SandboxHost {
  /** bwrap's path, or null when it is not installed (a sandboxed spawn then fails, never runs bare). */
  bwrap: string | null;
  /** Files and folders to hide: key files, $CREDENTIALS_DIRECTORY. */
  hidden: string[];
  /**
   * setpriv's path when the daemon is not root but holds capabilities (CAP_SETUID and
   * CAP_SETGID given by the unit for run_as): every child goes through it, which switches
   * the account and clears the inheritable and ambient sets, so no agent inherits them.
   * null when the daemon has no capabilities to leak (or is root: setuid from root drops them).
   */
  dropCaps: string | null;
  /**
   * What goes before bwrap when this process's /proc holds process folders only
   * (the unit's ProcSubset=pid): see proc-view.ts. Empty otherwise.
   */
  procWrapper: string[];
}

/** Where a process runs: the home to hide, its own folder (writable), its cwd, and folders it may read besides. */
export interface SandboxWhere {
  home: string;
  agentDir: string;
  cwd: string;
  readable?: string[];
}

export interface ConfinedSpawn {
  file: string;
  args: string[];
  /** Set when run_as asks for another account: node switches before exec. */
  uid?: number;
  gid?: number;
}

/** Variable that points the bwrap lookup elsewhere (a test of "bwrap missing", or a non-PATH install). */
export const BWRAP_ENV = 'AGENTD_BWRAP';

/** bwrap's path: $AGENTD_BWRAP when set (even if wrong: then null), else the first `bwrap` on PATH. */
export function findBwrap(env: NodeJS.ProcessEnv = process.env): string | null {
  return env[BWRAP_ENV] ? findExecutable([env[BWRAP_ENV]]) : findOnPath('bwrap', env);
}

/** The first executable `name` on PATH (or the usual folders), or null. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv = process.env): string | null {
  return findExecutable((env.PATH || '/usr/bin:/bin:/usr/sbin:/sbin').split(path.delimiter).filter(Boolean).map((dir) => path.join(dir, name)));
}

function findExecutable(candidates: string[]): string | null {
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * The bwrap argv for one process. Read-only root; fresh /dev, /proc (of its own
 * PID namespace, so no other process is visible) and /tmp; the home replaced by
 * an empty tmpfs with only the agent's own folder bound back, writable; key
 * files and credential folders covered. The network namespace is shared on
 * purpose: the run's model endpoint listens on 127.0.0.1 (README "Security").
 */
export function bwrapArgs(policy: SandboxWhere & { hidden: string[] }, command: string[]): string[] {
  const args = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc', '--tmpfs', '/tmp', '--tmpfs', '/var/tmp'];
  // The home read-only and empty but for the agent's own folder: no state/, outbox/, other agents.
  args.push('--tmpfs', policy.home, '--bind', policy.agentDir, policy.agentDir);
  // What agents import (README "Install"): the SDK at <home>/node_modules/agentd (self-contained:
  // its package.json and dist/src, since the SDK imports the protocol codec), and the Python module
  // where PYTHONPATH points. Read-only.
  const sdk = path.join(policy.home, 'node_modules', 'agentd');
  args.push('--ro-bind-try', path.join(PACKAGE_ROOT, 'package.json'), path.join(sdk, 'package.json'));
  args.push('--ro-bind-try', path.join(PACKAGE_ROOT, 'dist', 'src'), path.join(sdk, 'dist', 'src'));
  args.push('--ro-bind-try', PYTHON_MODULE_DIR, PYTHON_MODULE_DIR);
  // agentd's own code at its own path, read-only: the built-in agent runs from it, and an
  // installation under /tmp or inside the home (a clone used as its home) would be hidden otherwise.
  for (const part of ['package.json', 'dist', 'node_modules']) args.push('--ro-bind-try', path.join(PACKAGE_ROOT, part), path.join(PACKAGE_ROOT, part));
  // Bound before the remount: a mount point inside the emptied home must be made while it is writable.
  for (const readable of policy.readable ?? []) args.push('--ro-bind', readable, readable);
  args.push('--remount-ro', policy.home);
  for (const hidden of policy.hidden) args.push(...hideArgs(hidden));
  // Its own PID namespace, and --die-with-parent: when bwrap goes, so does everything inside,
  // setsid or not. No --new-session: the daemon's children have no terminal to steal, and
  // staying in bwrap's process group lets the group kill reach the agent itself.
  args.push('--unshare-pid', '--unshare-ipc', '--die-with-parent');
  args.push('--chdir', policy.cwd, '--', ...command);
  return args;
}

function existing(files: string[]): string[] {
  return files.filter((file) => fs.existsSync(file));
}

/** Cover a file with /dev/null and a folder with an empty tmpfs; what does not exist needs nothing. */
function hideArgs(target: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    return [];
  }
  return stat.isDirectory() ? ['--tmpfs', target] : ['--ro-bind', '/dev/null', target];
}

/** The process to spawn for `command` (its executable already resolved) under `confinement`. */
export function confineSpawn(
  command: string[],
  confinement: Confinement,
  where: SandboxWhere,
  host: SandboxHost,
): ConfinedSpawn {
  // The built-in model agent reads agentd.yaml (providers, shared tools) to resolve its own
  // definition; it holds key references, never keys, so that one file is shown read-only.
  if (command[1] === BUILTIN_AGENT_SCRIPT) where = { ...where, readable: [...(where.readable ?? []), ...existing(new HomePaths(where.home).daemonConfigCandidates())] };
  // bwrap missing at spawn time (removed since the definition loaded): spawning the bare
  // name fails with ENOENT and the run fails; it never runs unsandboxed.
  const inner = confinement.sandbox ? [...host.procWrapper, host.bwrap ?? 'bwrap', ...bwrapArgs({ ...where, hidden: host.hidden }, command)] : command;
  if (host.dropCaps !== null) {
    const runAs = confinement.runAs;
    const ids = runAs ? ['--reuid', String(runAs.uid), '--regid', String(runAs.gid), '--clear-groups'] : [];
    return { file: host.dropCaps, args: [...ids, '--inh-caps=-all', '--ambient-caps=-all', '--', ...inner] };
  }
  const ids = confinement.runAs ? { uid: confinement.runAs.uid, gid: confinement.runAs.gid } : {};
  return { file: inner[0]!, args: inner.slice(1), ...ids };
}

/** Null until agentd.yaml loads; a spawn before that looks bwrap up itself and hides nothing extra. */
let host: SandboxHost | null = null;

/** Set by the daemon (and `agentd run`) when agentd.yaml loads. */
export function setSandboxHost(next: SandboxHost): void {
  host = { bwrap: next.bwrap, hidden: [...next.hidden], dropCaps: next.dropCaps, procWrapper: [...next.procWrapper] };
}

export function sandboxHost(): SandboxHost {
  host ??= { bwrap: findBwrap(), hidden: [], dropCaps: null, procWrapper: [] };
  return host;
}

/** `confineSpawn` with this process's host settings: the one call the spawn sites make. */
export function confinedSpawn(command: string[], confinement: Confinement | undefined, where: SandboxWhere): ConfinedSpawn {
  return confineSpawn(command, confinement ?? { sandbox: false, runAs: null }, where, sandboxHost());
}
